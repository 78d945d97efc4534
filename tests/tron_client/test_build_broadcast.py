"""BuildTransaction -> sign (coincurve, a devnet account key) -> BroadcastTransaction -> included, for every
contract type the cluster builds, plus the read RPCs, against a real devnet and a real tron-client process."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import coincurve
import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from tronpay.common.v1 import common_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as pb
from tronpay.tron_client.v1 import tron_client_pb2_grpc as pb_grpc

from services.common import errors
from services.common.context import new_request_id
from services.common.tron import abi
from services.common.tron import address as taddr
from services.common.tron import tx as ttx
from tests.harness.devnet import Devnet, DevnetFactory
from tests.harness.ferretdb import FerretDB
from tests.harness.services import ServiceFactory, ServiceProcess
from tests.tron_client.fault_proxy import FaultProxy

TRX = 1_000_000
REPO = Path(__file__).resolve().parents[2]
ENERGY = common_pb2.RESOURCE_TYPE_ENERGY
BANDWIDTH = common_pb2.RESOURCE_TYPE_BANDWIDTH
ALL_OPERATIONS = bytes.fromhex("7fff1fc0033efb0f" + "00" * 24)


@pytest.fixture(scope="module")
def chain(devnet_factory: DevnetFactory) -> Devnet:
    """A devnet of our own: unfreezes mature at once and rewards can be claimed any time."""
    d = devnet_factory()
    d.set_params(devnetUnfreezeDelayMs=0, devnetWithdrawIntervalMs=0)
    return d


@pytest.fixture(scope="module")
def tron(
    chain: Devnet, ferretdb: FerretDB, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    factory = ServiceFactory(ferretdb, tmp_path_factory.mktemp("tron-build"))
    try:
        yield factory.start("tron_client", node_url=chain.url, env={"USDT_CONTRACT_ADDRESS": chain.usdt})[
            "tron_client"
        ]
    finally:
        factory.close()


@pytest.fixture(scope="module")
def stub(tron: ServiceProcess) -> Iterator[pb_grpc.TronClientServiceStub]:
    with tron.channel("usdt-manager") as ch:
        yield pb_grpc.TronClientServiceStub(ch)


def funded(chain: Devnet, trx: int = 5_000, usdt: int = 0) -> dict[str, str]:
    acc = chain.new_account()
    for txid in chain.faucet(acc["address"], trx=trx * TRX, usdt=usdt):
        chain.wait_for_tx(txid)
    return acc


def sign(tx: common_pb2.Transaction, *keys: str) -> common_pb2.Transaction:
    """Append 65-byte r||s||v signatures over the txID, as any TRON wallet does."""
    signed = common_pb2.Transaction()
    signed.CopyFrom(tx)
    for key in keys:
        signed.signatures.append(
            coincurve.PrivateKey(bytes.fromhex(key)).sign_recoverable(bytes.fromhex(tx.txid), hasher=None)
        )
    return signed


def build(
    stub: pb_grpc.TronClientServiceStub, owner: dict[str, str], **params: Any
) -> common_pb2.Transaction:
    resp = stub.BuildTransaction(
        pb.BuildTransactionRequest(owner_address=owner["address"], **params), timeout=15
    )
    return resp.transaction


def wait_included(stub: pb_grpc.TronClientServiceStub, txid: str) -> pb.GetTransactionResponse:
    deadline = time.monotonic() + 30
    while True:
        try:
            got = stub.GetTransaction(pb.GetTransactionRequest(txid=txid), timeout=10)
            if got.status in (
                pb.TRANSACTION_STATUS_INCLUDED,
                pb.TRANSACTION_STATUS_FINAL,
                pb.TRANSACTION_STATUS_FAILED,
            ):
                return got
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.NOT_FOUND:
                raise
        assert time.monotonic() < deadline, f"{txid} not included"
        time.sleep(0.2)


def submit(
    stub: pb_grpc.TronClientServiceStub, chain: Devnet, owner: dict[str, str], **params: Any
) -> tuple[common_pb2.Transaction, pb.GetTransactionResponse]:
    """Build, check the txID against the node, sign, broadcast, wait until included and successful."""
    tx = build(stub, owner, **params)
    assert tx.txid == ttx.txid(tx.raw_data) and tx.raw_data_hex == tx.raw_data.hex() and not tx.signatures
    # The node re-encodes our transaction from its JSON: same txID.
    node = chain.post("wallet/getsignweight", ttx.transaction_json(tx.raw_data))
    assert node["transaction"]["transaction"]["txID"] == tx.txid
    signed = sign(tx, owner["private_key"])
    sent = stub.BroadcastTransaction(
        pb.BroadcastTransactionRequest(request_id=new_request_id(), transaction=signed), timeout=15
    )
    assert sent.txid == tx.txid and sent.result == pb.BROADCAST_RESULT_ACCEPTED
    got = wait_included(stub, tx.txid)
    info = chain.post("wallet/gettransactioninfobyid", {"value": tx.txid})
    assert got.status != pb.TRANSACTION_STATUS_FAILED, info
    # What the chain holds is byte-for-byte what we built.
    assert chain.post("wallet/gettransactionbyid", {"value": tx.txid})["raw_data_hex"] == tx.raw_data_hex
    assert got.transaction.raw_data == tx.raw_data and list(got.transaction.signatures) == list(
        signed.signatures
    )
    assert got.block.number > 0 and len(got.block.block_id) == 64
    return tx, got


def error_info(err: grpc.RpcError) -> tuple[grpc.StatusCode, error_details_pb2.ErrorInfo, list[str]]:
    status = errors.status_from_error(err)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    fields: list[str] = []
    for d in status.details:
        if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            d.Unpack(info)
        elif d.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            d.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    return err.code(), info, fields


def test_every_contract_type(stub: pb_grpc.TronClientServiceStub, chain: Devnet) -> None:
    a = funded(chain, trx=5_000, usdt=1_000 * TRX)
    b = funded(chain, trx=10)
    types = set()

    def run(**params: Any) -> tuple[common_pb2.Transaction, pb.GetTransactionResponse]:
        tx, got = submit(stub, chain, a, **params)
        types.add(tx.contract_type)
        assert tx.owner_address == a["address"]
        return tx, got

    tx, _ = run(transfer=pb.TransferParams(to_address=b["address"], amount_sun=3 * TRX), memo="invoice 42")
    assert tx.contract_type == common_pb2.CONTRACT_TYPE_TRANSFER
    assert ttx.decode_raw(tx.raw_data).raw["data"] == b"invoice 42"

    param = abi.encode_args(["address", "uint256"], [b["address"], 5 * TRX])
    tx, _ = run(
        trigger_smart_contract=pb.TriggerSmartContractParams(
            contract_address=chain.usdt,
            function_selector="transfer(address,uint256)",
            parameter=param,
            fee_limit_sun=100 * TRX,
        )
    )
    assert tx.fee_limit_sun == 100 * TRX
    assert (
        stub.GetTokenBalance(
            pb.GetTokenBalanceRequest(address=b["address"], token_address=chain.usdt)
        ).balance
        == 5 * TRX
    )
    info = stub.GetTransactionInfo(pb.GetTransactionInfoRequest(txid=tx.txid), timeout=10).info
    assert info.result == pb.TransactionInfo.RESULT_SUCCESS and info.energy_usage_total > 0
    assert info.logs[0].address == chain.usdt and info.logs[0].topics[0].hex().startswith("ddf252ad")

    run(freeze_balance_v2=pb.FreezeBalanceV2Params(amount_sun=200 * TRX, resource=ENERGY))
    run(freeze_balance_v2=pb.FreezeBalanceV2Params(amount_sun=50 * TRX, resource=BANDWIDTH))
    run(
        vote_witness=pb.VoteWitnessParams(
            votes=[pb.Vote(witness_address=chain.witness["address"], vote_count=100)]
        )
    )
    run(
        delegate_resource=pb.DelegateResourceParams(
            receiver_address=b["address"], amount_sun=20 * TRX, resource=ENERGY
        )
    )
    run(
        undelegate_resource=pb.UnDelegateResourceParams(
            receiver_address=b["address"], amount_sun=20 * TRX, resource=ENERGY
        )
    )
    run(unfreeze_balance_v2=pb.UnfreezeBalanceV2Params(amount_sun=10 * TRX, resource=ENERGY))
    chain.wait_for_block(
        chain.status()["head"] + 1
    )  # the unfreeze matures at once (delay 0) in a later block
    run(withdraw_expire_unfreeze=pb.WithdrawExpireUnfreezeParams())

    owner_perm = pb.Permission(
        type=pb.Permission.TYPE_OWNER, id=0, permission_name="owner", threshold=1,
        keys=[pb.PermissionKey(address=a["address"], weight=1)],
    )  # fmt: skip
    two_keys = [
        pb.PermissionKey(address=a["address"], weight=1),
        pb.PermissionKey(address=b["address"], weight=1),
    ]
    active = pb.Permission(
        type=pb.Permission.TYPE_ACTIVE, id=2, permission_name="ops", threshold=2, operations=ALL_OPERATIONS,
        keys=two_keys,
    )  # fmt: skip
    run(account_permission_update=pb.AccountPermissionUpdateParams(owner=owner_perm, actives=[active]))
    acc = stub.GetAccount(pb.GetAccountRequest(address=a["address"]), timeout=10).account
    assert acc.active_permissions[0].threshold == 2 and len(acc.active_permissions[0].keys) == 2
    assert acc.active_permissions[0].operations == ALL_OPERATIONS
    assert acc.votes[0].witness_address == chain.witness["address"] and acc.votes[0].vote_count == 100
    assert {(f.resource, f.amount_sun) for f in acc.frozen} == {(ENERGY, 190 * TRX), (BANDWIDTH, 50 * TRX)}

    # A transaction under the new 2-of-2 active permission needs both keys.
    tx = build(stub, a, transfer=pb.TransferParams(to_address=b["address"], amount_sun=TRX), permission_id=2)
    assert tx.permission_id == 2
    with pytest.raises(grpc.RpcError) as err:
        stub.BroadcastTransaction(
            pb.BroadcastTransactionRequest(
                request_id=new_request_id(), transaction=sign(tx, a["private_key"])
            ),
            timeout=15,
        )
    code, ei, _ = error_info(err.value)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and ei.reason == "SIGERROR", ei
    both = sign(tx, a["private_key"], b["private_key"])
    sent = stub.BroadcastTransaction(
        pb.BroadcastTransactionRequest(request_id=new_request_id(), transaction=both), timeout=15
    )
    assert sent.result == pb.BROADCAST_RESULT_ACCEPTED and wait_included(stub, tx.txid).block.number > 0

    # Voting rewards: the witness account's own allowance from producing blocks.
    w = chain.witness
    before = stub.GetAccount(pb.GetAccountRequest(address=w["address"]), timeout=10).account
    assert before.reward_sun > 0
    tx, _ = submit(stub, chain, w, withdraw_balance=pb.WithdrawBalanceParams())
    types.add(tx.contract_type)
    assert types == set(range(1, 11)), types  # all ten ContractType values


def test_create_smart_contract(stub: pb_grpc.TronClientServiceStub, chain: Devnet) -> None:
    """A contract deployment: the address BuildTransaction predicts is the one the chain gives the contract,
    and the ABI stored with it is what tronpy and TronWeb read back."""
    owner = funded(chain, trx=3_000)
    art = json.loads((REPO / "contracts" / "artifacts" / "PayoutRouterV0.json").read_text())
    ctor = abi.encode_args(
        ["address", "address", "uint256", "uint256", "uint256"], [chain.usdt, owner["address"], 5, 50, 7]
    )
    params = pb.CreateSmartContractParams(
        name="PayoutRouterV0",
        abi_json=json.dumps(art["abi"]),
        bytecode=bytes.fromhex(art["bytecode"]) + ctor,
        consume_user_resource_percent=100,
        origin_energy_limit=10_000_000,
        fee_limit_sun=2_000 * TRX,
    )
    resp = stub.BuildTransaction(
        pb.BuildTransactionRequest(owner_address=owner["address"], create_smart_contract=params), timeout=15
    )
    predicted = resp.contract_address
    assert predicted.startswith("T") and resp.transaction.fee_limit_sun == 2_000 * TRX
    tx, _ = submit(stub, chain, owner, create_smart_contract=params)
    assert tx.txid != resp.transaction.txid  # a new timestamp: another transaction, another address
    info = stub.GetTransactionInfo(pb.GetTransactionInfoRequest(txid=tx.txid), timeout=10).info
    assert info.result == pb.TransactionInfo.RESULT_SUCCESS
    built = ttx.decode_raw(tx.raw_data).value
    assert info.contract_address == taddr.to_base58(
        b"\x41" + taddr.keccak256(bytes.fromhex(tx.txid) + built["owner_address"])[12:]
    )
    stored = chain.post("wallet/getcontract", {"value": info.contract_address, "visible": True})
    entries = {e.get("name"): e for e in stored["abi"]["entrys"]}
    assert (
        entries["maxBatchSize"]["stateMutability"] == "View" and entries["maxBatchSize"]["type"] == "Function"
    )
    assert entries["Paid"]["type"] == "Event" and entries["Paid"]["inputs"][0]["indexed"] is True
    assert stored["name"] == "PayoutRouterV0" and stored["consume_user_resource_percent"] == 100
    size = stub.TriggerConstantContract(
        pb.TriggerConstantContractRequest(
            owner_address=owner["address"], contract_address=info.contract_address,
            function_selector="maxBatchSize()",
        ),
        timeout=10,
    )  # fmt: skip
    assert int.from_bytes(size.result, "big") == 7

    for broken in ("{}", '[{"type": "nonsense"}]', "not json"):
        bad = pb.CreateSmartContractParams()
        bad.CopyFrom(params)
        bad.abi_json = broken
        with pytest.raises(grpc.RpcError) as err:
            build(stub, owner, create_smart_contract=bad)
        code, _, fields = error_info(err.value)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "create_smart_contract.abi_json" in fields


def test_txid_matches_node_built_transfer(chain: Devnet) -> None:
    """The node's own builder (createtransaction) and our encoder agree on the bytes and the txID."""
    a, b = chain.funded[0], chain.new_account()
    node = chain.post(
        "wallet/createtransaction", {"owner_address": a["hex"], "to_address": b["hex"], "amount": 7 * TRX}
    )
    raw = node["raw_data"]
    ref = ttx.RefBlock(
        int(raw["ref_block_bytes"], 16), bytes(8) + bytes.fromhex(raw["ref_block_hash"]) + bytes(16), 0
    )
    ours = ttx.build_raw(
        "TransferContract",
        {"owner_address": bytes.fromhex(a["hex"]), "to_address": bytes.fromhex(b["hex"]), "amount": 7 * TRX},
        ref,
        expiration_ms=raw["expiration"],
        timestamp_ms=raw["timestamp"],
    )
    assert ours.hex() == node["raw_data_hex"] and ttx.txid(ours) == node["txID"]


def test_broadcast_is_idempotent(stub: pb_grpc.TronClientServiceStub, chain: Devnet) -> None:
    a, b = funded(chain, trx=100), chain.new_account()
    signed = sign(
        build(stub, a, transfer=pb.TransferParams(to_address=b["address"], amount_sun=2 * TRX)),
        a["private_key"],
    )
    # Each call with a new request_id reaches the node: broadcasting is idempotent by txid as well.
    first = stub.BroadcastTransaction(
        pb.BroadcastTransactionRequest(request_id=new_request_id(), transaction=signed), timeout=15
    )
    again = stub.BroadcastTransaction(
        pb.BroadcastTransactionRequest(request_id=new_request_id(), transaction=signed), timeout=15
    )
    assert first.result == pb.BROADCAST_RESULT_ACCEPTED and again.result == pb.BROADCAST_RESULT_DUPLICATE
    assert first.txid == again.txid == signed.txid
    wait_included(stub, signed.txid)
    later = stub.BroadcastTransaction(
        pb.BroadcastTransactionRequest(request_id=new_request_id(), transaction=signed), timeout=15
    )
    assert later.result == pb.BROADCAST_RESULT_DUPLICATE and later.txid == signed.txid
    assert (
        stub.GetAccount(pb.GetAccountRequest(address=b["address"]), timeout=10).account.balance_sun == 2 * TRX
    )

    # With a request_id the first answer is replayed as is.
    signed2 = sign(
        build(stub, a, transfer=pb.TransferParams(to_address=b["address"], amount_sun=TRX)), a["private_key"]
    )
    req = pb.BroadcastTransactionRequest(request_id="bcast-" + signed2.txid[:16], transaction=signed2)
    r1 = stub.BroadcastTransaction(req, timeout=15)
    r2 = stub.BroadcastTransaction(req, timeout=15)
    assert r1 == r2 and r1.result == pb.BROADCAST_RESULT_ACCEPTED

    # request_id is required.
    with pytest.raises(grpc.RpcError) as err:
        stub.BroadcastTransaction(pb.BroadcastTransactionRequest(transaction=signed2), timeout=15)
    code, _, fields = error_info(err.value)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and fields == ["request_id"], fields


def test_node_rejections_map_to_grpc_errors(stub: pb_grpc.TronClientServiceStub, chain: Devnet) -> None:
    a, b = funded(chain, trx=10), chain.new_account()

    def broadcast_error(
        tx: common_pb2.Transaction,
    ) -> tuple[grpc.StatusCode, error_details_pb2.ErrorInfo, list[str]]:
        with pytest.raises(grpc.RpcError) as err:
            stub.BroadcastTransaction(
                pb.BroadcastTransactionRequest(request_id=new_request_id(), transaction=tx), timeout=15
            )
        return error_info(err.value)

    # Signed by the wrong key.
    tx = build(stub, a, transfer=pb.TransferParams(to_address=b["address"], amount_sun=TRX))
    code, ei, _ = broadcast_error(sign(tx, b["private_key"]))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and ei.reason == "SIGERROR"
    assert ei.metadata["node_code"] == "SIGERROR" and "signature" in ei.metadata["node_message"].lower()
    # More than the balance.
    tx = build(stub, a, transfer=pb.TransferParams(to_address=b["address"], amount_sun=1_000 * TRX))
    code, ei, _ = broadcast_error(sign(tx, a["private_key"]))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and ei.reason == "CONTRACT_VALIDATE_ERROR"
    assert "balance is not sufficient" in ei.metadata["node_message"]
    # Expired: a one-second window.
    tx = build(
        stub,
        a,
        transfer=pb.TransferParams(to_address=b["address"], amount_sun=TRX),
        expiration=duration_pb2.Duration(seconds=1),
    )
    chain.wait_for_block(chain.status()["head"] + 4)
    code, ei, _ = broadcast_error(sign(tx, a["private_key"]))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and ei.reason == "TRANSACTION_EXPIRED"
    # An owner that does not exist on chain cannot sign anything: refused at build time.
    ghost = chain.new_account()
    with pytest.raises(grpc.RpcError) as err:
        build(stub, ghost, transfer=pb.TransferParams(to_address=b["address"], amount_sun=TRX))
    code, ei, _ = error_info(err.value)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and ei.reason == "PERMISSION_ERROR"


def test_bad_input_is_invalid_argument(stub: pb_grpc.TronClientServiceStub, chain: Devnet) -> None:
    a = chain.funded[0]
    bad_checksum = a["address"][:-1] + ("A" if a["address"][-1] != "A" else "B")
    cases = [
        (
            pb.BuildTransactionRequest(
                owner_address=bad_checksum, withdraw_balance=pb.WithdrawBalanceParams()
            ),
            "owner_address",
        ),
        (
            pb.BuildTransactionRequest(
                owner_address=a["address"],
                trigger_smart_contract=pb.TriggerSmartContractParams(
                    contract_address=chain.usdt, function_selector="f()", parameter=b"\x01", fee_limit_sun=TRX
                ),
            ),
            "trigger_smart_contract.parameter",
        ),
        (
            pb.BuildTransactionRequest(
                owner_address=a["address"],
                vote_witness=pb.VoteWitnessParams(
                    votes=[pb.Vote(witness_address=chain.witness["address"], vote_count=1)] * 2
                ),
            ),
            "vote_witness.votes",
        ),
        (
            pb.BuildTransactionRequest(
                owner_address=a["address"],
                account_permission_update=pb.AccountPermissionUpdateParams(
                    owner=pb.Permission(
                        type=pb.Permission.TYPE_OWNER,
                        id=3,
                        threshold=5,
                        keys=[pb.PermissionKey(address=a["address"], weight=1)],
                    ),
                    actives=[
                        pb.Permission(
                            type=pb.Permission.TYPE_ACTIVE,
                            id=2,
                            threshold=1,
                            keys=[pb.PermissionKey(address=a["address"], weight=1)],
                        )
                    ],
                ),
            ),
            "account_permission_update.owner.id",
        ),
    ]
    for req, field in cases:
        with pytest.raises(grpc.RpcError) as err:
            stub.BuildTransaction(req, timeout=10)
        code, _, fields = error_info(err.value)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and field in fields, (field, fields)

    # The read RPCs check the checksum too.
    for call, read_field in [
        (lambda: stub.GetAccount(pb.GetAccountRequest(address=bad_checksum), timeout=10), "address"),
        (
            lambda: stub.GetTokenBalance(
                pb.GetTokenBalanceRequest(address=a["address"], token_address=bad_checksum), timeout=10
            ),
            "token_address",
        ),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            call()
        code, _, fields = error_info(err.value)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and read_field in fields, (read_field, fields)

    tx = sign(
        build(stub, a, transfer=pb.TransferParams(to_address=chain.new_account()["address"], amount_sun=1)),
        a["private_key"],
    )
    for broken, field in [
        (
            common_pb2.Transaction(raw_data=tx.raw_data, signatures=tx.signatures, txid="0" * 64),
            "transaction.txid",
        ),
        (common_pb2.Transaction(raw_data=tx.raw_data), "transaction.signatures"),
        (common_pb2.Transaction(raw_data=b"\x0a\x02", signatures=tx.signatures), "transaction.raw_data"),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            stub.BroadcastTransaction(
                pb.BroadcastTransactionRequest(request_id=new_request_id(), transaction=broken), timeout=10
            )
        code, _, fields = error_info(err.value)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and field in fields, (field, fields)


def test_reads(stub: pb_grpc.TronClientServiceStub, chain: Devnet) -> None:
    a = funded(chain, trx=100, usdt=42 * TRX)
    ghost = chain.new_account()
    acc = stub.GetAccount(pb.GetAccountRequest(address=a["address"]), timeout=10).account
    node = chain.post("wallet/getaccount", {"address": a["hex"]})
    assert acc.exists and acc.balance_sun == node["balance"] and acc.create_time.seconds > 0
    assert (
        acc.owner_permission.type == pb.Permission.TYPE_OWNER
        and acc.owner_permission.keys[0].address == a["address"]
    )
    assert not stub.GetAccount(pb.GetAccountRequest(address=ghost["address"]), timeout=10).account.exists

    res = stub.GetAccountResource(pb.GetAccountResourceRequest(address=a["address"]), timeout=10).resource
    node_res = chain.post("wallet/getaccountresource", {"address": a["hex"]})
    assert (
        res.free_net_limit == node_res["freeNetLimit"] > 0
        and res.total_energy_limit == node_res["TotalEnergyLimit"]
    )

    bal = stub.GetTokenBalance(
        pb.GetTokenBalanceRequest(address=a["address"], token_address=chain.usdt), timeout=10
    )
    assert bal.balance == 42 * TRX and bal.block.number > 0

    call = stub.TriggerConstantContract(
        pb.TriggerConstantContractRequest(
            owner_address=a["address"],
            contract_address=chain.usdt,
            function_selector="balanceOf(address)",
            parameter=abi.encode_args(["address"], [a["address"]]),
        ),
        timeout=10,
    )
    assert (
        call.success and abi.decode_result(["uint256"], call.result) == (42 * TRX,) and call.energy_used > 0
    )
    too_much = abi.encode_args(["address", "uint256"], [ghost["address"], 10**30])
    reverted = stub.TriggerConstantContract(
        pb.TriggerConstantContractRequest(
            owner_address=a["address"],
            contract_address=chain.usdt,
            function_selector="transfer(address,uint256)",
            parameter=too_much,
        ),
        timeout=10,
    )
    assert not reverted.success

    transfer = abi.encode_args(["address", "uint256"], [ghost["address"], TRX])
    est = stub.EstimateEnergy(
        pb.EstimateEnergyRequest(
            owner_address=a["address"],
            contract_address=chain.usdt,
            function_selector="transfer(address,uint256)",
            parameter=transfer,
        ),
        timeout=10,
    )
    node_est = chain.post(
        "wallet/estimateenergy",
        {
            "owner_address": a["hex"],
            "contract_address": chain.usdt_hex,
            "function_selector": "transfer(address,uint256)",
            "parameter": transfer.hex(),
        },
    )
    assert est.energy_required == node_est["energy_required"] > 0
    assert est.suggested_fee_limit_sun == est.energy_required * est.energy_price_sun * 120 // 100

    params = stub.GetChainParameters(pb.GetChainParametersRequest(), timeout=10).parameters
    node_params = chain.post("wallet/getchainparameters")["chainParameter"]
    assert [(p.key, p.value) for p in params] == [(p["key"], p.get("value", 0)) for p in node_params]

    with pytest.raises(grpc.RpcError) as err:
        stub.GetTransaction(pb.GetTransactionRequest(txid="ab" * 32), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        stub.GetTransactionInfo(pb.GetTransactionInfoRequest(txid="ab" * 32), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_transaction_becomes_final(stub: pb_grpc.TronClientServiceStub, chain: Devnet) -> None:
    a, b = funded(chain, trx=10), chain.new_account()
    tx, got = submit(stub, chain, a, transfer=pb.TransferParams(to_address=b["address"], amount_sun=TRX))
    chain.wait_for_block(got.block.number, solid=True)
    deadline = time.monotonic() + 10
    while True:  # GetNetworkHeight is cached for a second
        final = stub.GetTransaction(pb.GetTransactionRequest(txid=tx.txid), timeout=10)
        if final.status == pb.TRANSACTION_STATUS_FINAL or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert final.status == pb.TRANSACTION_STATUS_FINAL and final.confirmations >= 0
    info = stub.GetTransactionInfo(pb.GetTransactionInfoRequest(txid=tx.txid), timeout=10).info
    assert (
        info.solidified
        and info.block.number == got.block.number
        and info.block.block_id == got.block.block_id
    )
    assert info.result == pb.TransactionInfo.RESULT_SUCCESS
    assert taddr.from_base58(tx.owner_address) == bytes.fromhex(a["hex"])


@pytest.mark.parametrize("check", ["true", "false"])
def test_txid_check_is_optional(chain: Devnet, service_factory: ServiceFactory, check: str) -> None:
    """TRON_TXID_CHECK=false builds without the node round trip (here: a node whose getsignweight fails)."""
    proxy = FaultProxy(chain.url)
    try:
        proxy.set_faults(error_rate=1.0, paths=["/wallet/getsignweight"])
        env = {"TRON_TXID_CHECK": check, "TRON_SYNC_ENABLED": "false", "TRON_NODE_TIMEOUT": "1"}
        proc = service_factory.start("tron_client", node_url=proxy.url, env=env)["tron_client"]
        a = chain.funded[0]
        req = pb.BuildTransactionRequest(
            owner_address=a["address"],
            transfer=pb.TransferParams(to_address=chain.new_account()["address"], amount_sun=1),
        )
        with proc.channel("usdt-manager") as ch:
            stub = pb_grpc.TronClientServiceStub(ch)
            if check == "true":
                with pytest.raises(grpc.RpcError) as err:
                    stub.BuildTransaction(req, timeout=10)
                assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            else:
                tx = stub.BuildTransaction(req, timeout=10).transaction
                assert tx.txid == ttx.txid(tx.raw_data)
        assert bool(proxy.counts()["error"]) == (check == "true")
    finally:
        proxy.stop()
