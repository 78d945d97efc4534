"""Every usdt-manager endpoint through the real Envoy edge (REST with a token) in front of the real services
and devnet; GetTransfer/GetApproval (internal RPCs) over mutual TLS as payout-router. tronpy, an independent
client, confirms the on-chain effect of every CONFIRMED transfer and approval."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from tronpay.tron_client.v1 import tron_client_pb2 as tc
from tronpay.usdt_manager.v1 import usdt_manager_pb2 as pb
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as wm

from services.common.chain_ops import operation_id
from tests.edge.http import Reply, call
from tests.usdt_manager.conftest import Rig
from tests.usdt_manager.support import (
    SPENDER,
    STATE,
    USDT,
    Wallet,
    fresh_address,
    new_wallet,
    reason,
    rid,
    wait_transfers,
    wait_until,
)


def rest(
    rig: Rig, method: str, path: str, body: dict[str, Any] | None = None, role: str = "operator"
) -> Reply:
    return call(rig.edge.rest_url, method, path, body=body, headers=rig.edge.auth(role))


def ok(reply: Reply) -> dict[str, Any]:
    assert reply.status == 200, (reply.status, reply.body)
    data: dict[str, Any] = reply.json()
    return data


def error_reason(reply: Reply) -> str:
    (info,) = [d for d in reply.json()["details"] if d["@type"].endswith("google.rpc.ErrorInfo")]
    return str(info["reason"])


def violations(reply: Reply) -> dict[str, str]:
    return {
        v["field"]: v.get("reason", "") for d in reply.json()["details"] for v in d.get("fieldViolations", [])
    }


@pytest.fixture(scope="module")
def sender(rig: Rig) -> Wallet:
    return new_wallet(rig.devnet, rig.stubs.wallets(), usdt=500 * USDT)


def test_transfer_through_the_edge_is_confirmed_on_chain(rig: Rig, sender: Wallet) -> None:
    usdt, to = rig.devnet.usdt, fresh_address()
    before = rig.chain.balance(usdt, sender.address)
    body = {"requestId": rid(), "walletId": sender.wallet_id, "toAddress": to, "amount": str(7 * USDT),
            "reference": "payout po_1"}  # fmt: skip
    created = ok(rest(rig, "POST", "/api/v1/usdt/transfer", body))["transfer"]
    assert created["state"] in ("OPERATION_STATE_SIGNED", "OPERATION_STATE_BROADCAST")
    assert created["fromAddress"] == sender.address and created["tokenAddress"] == usdt
    assert int(created["energyEstimate"]) > 0 and 0 < int(created["feeLimitSun"]) <= int(
        created["feeLimitCapSun"]
    )
    # The same request again is the same transfer; the same request_id with another body is refused.
    assert (
        ok(rest(rig, "POST", "/api/v1/usdt/transfer", body))["transfer"]["transferId"]
        == created["transferId"]
    )
    reused = rest(rig, "POST", "/api/v1/usdt/transfer", {**body, "amount": "1"})
    assert reused.status == 400 and error_reason(reused) == "REQUEST_ID_REUSED"

    internal = rig.stubs.usdt_internal()
    done = wait_transfers(internal, [created["transferId"]], timeout=30)[created["transferId"]]
    assert done.state == STATE.OPERATION_STATE_CONFIRMED, done
    assert done.reference == "payout po_1" and done.block_number > 0 and done.confirm_time.seconds > 0
    assert (
        done.fee_sun > 0 and done.energy_used > 0 and done.energy_fee_sun > 0 and done.energy_source == "burn"
    )
    assert done.fee_sun == done.energy_fee_sun + done.net_fee_sun
    (attempt,) = done.attempts
    assert attempt.txid == done.txid and attempt.broadcast_count >= 1 and not attempt.expired
    # The chain, read by tronpy: exactly the amount moved, and the receipt is the one recorded.
    assert rig.chain.balance(usdt, to) == 7 * USDT
    assert rig.chain.balance(usdt, sender.address) == before - 7 * USDT
    info = rig.chain.client.get_transaction_info(done.txid)
    assert info["receipt"]["result"] == "SUCCESS" and info["blockNumber"] == done.block_number
    assert info["receipt"]["energy_usage_total"] == done.energy_used

    missing = rig.stubs.usdt_internal().GetTransfer
    with pytest.raises(grpc.RpcError) as err:
        missing(pb.GetTransferRequest(transfer_id="tr_missing"), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and reason(err.value) == "TRANSFER_NOT_FOUND"


def test_balance_head_and_solidified(rig: Rig, sender: Wallet) -> None:
    usdt = rig.devnet.usdt
    got = ok(rest(rig, "GET", f"/api/v1/usdt/balance/{sender.address}", role="viewer"))
    solid = wait_until(
        lambda: ok(rest(rig, "GET", f"/api/v1/usdt/balance/{sender.address}", role="viewer")),
        lambda b: int(b["solidifiedBalance"]) == rig.chain.balance(usdt, sender.address),
    )
    assert int(got["balance"]) == rig.chain.balance(usdt, sender.address) and got["tokenAddress"] == usdt
    assert int(got["trxBalanceSun"]) == rig.chain.trx(sender.address) and not got.get("blacklisted", False)
    assert int(solid["solidifiedBlockNumber"]) <= int(solid["blockNumber"])
    mine = ok(rest(rig, "GET", f"/api/v1/usdt/balance/{sender.address}?tokenAddress={rig.token}"))
    assert mine["tokenAddress"] == rig.token and mine.get("balance", "0") == "0"


def test_transactions_of_a_wallet_address_name_the_transfer(rig: Rig, sender: Wallet) -> None:
    t = rig.stubs.usdt().CreateTransfer(
        pb.CreateTransferRequest(request_id=rid(), wallet_id=sender.wallet_id, to_address=fresh_address(),
                                 amount=3 * USDT),
        timeout=30,
    ).transfer  # fmt: skip
    done = wait_transfers(rig.stubs.usdt_internal(), [t.transfer_id], timeout=30)[t.transfer_id]
    path = f"/api/v1/usdt/transactions/{sender.address}"
    page = wait_until(
        lambda: ok(rest(rig, "GET", path + "?direction=DIRECTION_OUTGOING", role="viewer")),
        lambda p: any(
            r["txid"] == done.txid and r["state"] == "TRANSFER_STATE_FINAL" for r in p.get("transactions", [])
        ),
    )
    (row,) = [r for r in page["transactions"] if r["txid"] == done.txid]
    assert row["transferId"] == t.transfer_id and row["direction"] == "DIRECTION_OUTGOING"
    assert row["amount"] == str(3 * USDT) and row["tokenAddress"] == rig.devnet.usdt
    first = ok(rest(rig, "GET", path + "?pageSize=1", role="viewer"))
    assert len(first["transactions"]) == 1 and first["nextPageToken"]
    other_filter = rest(
        rig, "GET", path + f"?pageSize=1&pageToken={first['nextPageToken']}&direction=DIRECTION_INCOMING"
    )
    assert other_filter.status == 400 and "page_token" in violations(other_filter)


def test_history_of_an_unwatched_address_says_so_until_it_is_watched_with_its_past(
    rig: Rig, sender: Wallet
) -> None:
    to = fresh_address()
    t = (
        rig.stubs.usdt()
        .CreateTransfer(
            pb.CreateTransferRequest(
                request_id=rid(), wallet_id=sender.wallet_id, to_address=to, amount=2 * USDT
            ),
            timeout=30,
        )
        .transfer
    )
    done = wait_transfers(rig.stubs.usdt_internal(), [t.transfer_id], timeout=30)[t.transfer_id]
    refused = rest(rig, "GET", f"/api/v1/usdt/transactions/{to}")
    assert refused.status == 400 and error_reason(refused) == "NOT_WATCHED", refused.body
    # Watched late, from a block before the transfer: tron-client rescans and records its past.
    rig.stubs.tron().WatchAddresses(
        tc.WatchAddressesRequest(request_id=rid(), addresses=[to], watcher="usdt-tests",
                                 start_block=done.block_number - 1),
        timeout=10,
    )  # fmt: skip
    page = wait_until(
        lambda: ok(rest(rig, "GET", f"/api/v1/usdt/transactions/{to}")),
        lambda p: p.get("transactions"),
        timeout=30,
    )
    (row,) = page["transactions"]
    assert (
        row["txid"] == done.txid
        and row["direction"] == "DIRECTION_INCOMING"
        and row["transferId"] == t.transfer_id
    )
    assert row["state"] == "TRANSFER_STATE_FINAL" and row["blockNumber"] == str(done.block_number)


def test_approve_allowance_and_revoke(rig: Rig, sender: Wallet) -> None:
    internal = rig.stubs.usdt_internal()
    usdt = rig.devnet.usdt
    for amount in (25 * USDT, 0):  # 0 revokes
        body = {
            "requestId": rid(),
            "walletId": sender.wallet_id,
            "spenderAddress": SPENDER,
            "amount": str(amount),
        }
        created = ok(rest(rig, "POST", "/api/v1/usdt/approve", body))["approval"]
        assert created["ownerAddress"] == sender.address and created["spenderAddress"] == SPENDER
        approval_id = created["approvalId"]
        done = wait_until(
            lambda: internal.GetApproval(pb.GetApprovalRequest(approval_id=approval_id), timeout=10),  # noqa: B023
            lambda r: r.approval.state == STATE.OPERATION_STATE_CONFIRMED,
            timeout=30,
        ).approval
        assert done.fee_sun > 0 and done.energy_used > 0 and done.block_number > 0 and len(done.attempts) == 1
        assert int(rig.chain.contract(usdt).functions.allowance(sender.address, SPENDER)) == amount
        query = f"ownerAddress={sender.address}&spenderAddress={SPENDER}"
        got = ok(rest(rig, "GET", f"/api/v1/usdt/allowance?{query}", role="viewer"))
        assert int(got.get("amount", "0")) == amount and int(got["blockNumber"]) >= done.block_number


def test_an_approval_the_wallet_policy_does_not_allow_is_refused_unsigned(rig: Rig, sender: Wallet) -> None:
    body = {
        "requestId": rid(),
        "walletId": sender.wallet_id,
        "spenderAddress": fresh_address(),
        "amount": "1",
    }
    refused = rest(rig, "POST", "/api/v1/usdt/approve", body)
    assert refused.status == 403 and error_reason(refused) == "SPENDER_NOT_ALLOWED", refused.body
    # Nothing signed, nothing stored: the request may be retried once the policy allows it.
    signed = rig.stubs.wallets_operator().ListSignatures(wm.ListSignaturesRequest(wallet_id=sender.wallet_id))
    assert not [r for r in signed.records if r.to_address == body["spenderAddress"]]
    approval_id = operation_id("ap", body["requestId"])
    with pytest.raises(grpc.RpcError) as err:
        rig.stubs.usdt_internal().GetApproval(pb.GetApprovalRequest(approval_id=approval_id), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_bad_requests_are_field_violations(rig: Rig, sender: Wallet) -> None:
    base = {"requestId": rid(), "walletId": sender.wallet_id, "toAddress": fresh_address(), "amount": "1"}
    bad_checksum = base["toAddress"][:-1] + ("1" if base["toAddress"][-1] != "1" else "2")
    cases = [
        ({**base, "toAddress": bad_checksum}, "to_address"),
        ({**base, "amount": "0"}, "amount"),
        ({**base, "tokenAddress": fresh_address()}, "token_address"),
        ({**base, "requestId": ""}, "request_id"),
    ]
    for body, field in cases:
        reply = rest(rig, "POST", "/api/v1/usdt/transfer", body)
        assert reply.status == 400 and field in violations(reply), (field, reply.body)
    unknown = rest(
        rig, "POST", "/api/v1/usdt/transfer", {**base, "requestId": rid(), "walletId": "wal_missing"}
    )
    assert unknown.status == 404 and error_reason(unknown) == "WALLET_NOT_FOUND"
    viewer = call(
        rig.edge.rest_url, "POST", "/api/v1/usdt/transfer", body=base, headers=rig.edge.auth("viewer")
    )
    assert viewer.status == 403
