"""Every staking endpoint through the real Envoy edge (REST with a token) in front of the real services and
devnet; the RPCs without a REST binding are not reachable through the edge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.edge.http import Reply, call
from tests.harness.envoy import Edge, start_edge
from tests.trx_staking.conftest import Rig
from tests.trx_staking.support import TRX, confirmed, new_wallet, rid, staking_policy, wait_until


@pytest.fixture(scope="module")
def edge(rig: Rig, envoy_descriptor: Path) -> Iterator[Edge]:
    ports = {name: rig.cluster[name].port for name in ("tron_client", "wallet_manager", "trx_staking")}
    with start_edge(ports, rig.log_dir / "edge", descriptor=envoy_descriptor, wait_healthy=tuple(ports)) as e:
        yield e


def rest(
    edge: Edge, method: str, path: str, body: dict[str, Any] | None = None, role: str = "operator"
) -> Reply:
    return call(edge.rest_url, method, path, body=body, headers=edge.auth(role))


def ok(reply: Reply) -> dict[str, Any]:
    assert reply.status == 200, (reply.status, reply.body)
    data: dict[str, Any] = reply.json()
    return data


def error_reason(reply: Reply) -> str:
    (info,) = [d for d in reply.json()["details"] if d["@type"].endswith("google.rpc.ErrorInfo")]
    return str(info["reason"])


def test_every_endpoint_through_the_edge(rig: Rig, edge: Edge) -> None:
    user = new_wallet(rig.devnet, rig.stubs.wallets(), staking_policy(), trx=5_000 * TRX)
    stake = {"requestId": rid(), "walletId": user.wallet_id, "amountSun": str(2_000 * TRX),
             "resource": "RESOURCE_TYPE_ENERGY"}  # fmt: skip
    op = ok(rest(edge, "POST", "/api/v1/staking/stake", stake))["operation"]
    assert (
        op["kind"] == "KIND_STAKE"
        and op["ownerAddress"] == user.address
        and op["amountSun"] == str(2_000 * TRX)
    )
    confirmed(rig.stubs.staking_operator(), op["operationId"])

    status = ok(rest(edge, "GET", f"/api/v1/staking/status/{user.address}", role="viewer"))["status"]
    assert status["staked"] == [{"resource": "RESOURCE_TYPE_ENERGY", "amountSun": str(2_000 * TRX)}]
    assert int(status["energyLimit"]) == rig.node.resource(user.address)["EnergyLimit"]

    unstake = {"requestId": rid(), "walletId": user.wallet_id, "amountSun": str(500 * TRX),
               "resource": "RESOURCE_TYPE_ENERGY"}  # fmt: skip
    op = ok(rest(edge, "POST", "/api/v1/staking/unstake", unstake))["operation"]
    done = confirmed(rig.stubs.staking_operator(), op["operationId"])
    pending = wait_until(
        lambda: ok(rest(edge, "GET", f"/api/v1/staking/status/{user.address}", role="viewer"))["status"],
        lambda s: bool(s.get("pendingUnstakes")),
    )["pendingUnstakes"]
    assert pending[0]["amountSun"] == str(500 * TRX) and pending[0]["withdrawableTime"]
    assert done.withdrawable_time.seconds > 0

    rewards = ok(rest(edge, "GET", f"/api/v1/staking/rewards/{user.address}", role="viewer"))
    assert rewards["address"] == user.address and rewards.get("unclaimedRewardSun", "0") == "0"

    # A chain rule refused at the edge: 400 with the reason; bad input: 400 with the field.
    claim = {"requestId": rid(), "walletId": user.wallet_id, "kind": "WITHDRAW_KIND_REWARDS"}
    refused = rest(edge, "POST", "/api/v1/staking/withdraw", claim)
    assert refused.status == 400 and error_reason(refused) == "NO_REWARD"
    bad = rest(edge, "POST", "/api/v1/staking/stake", {**stake, "requestId": rid(), "amountSun": "1"})
    fields = {v["field"] for d in bad.json()["details"] for v in d.get("fieldViolations", [])}
    assert bad.status == 400 and "amount_sun" in fields
    # A viewer may read but not stake.
    assert (
        rest(edge, "POST", "/api/v1/staking/stake", {**stake, "requestId": rid()}, role="viewer").status
        == 403
    )
    # The expired unstake is withdrawn through the edge too.
    wait_until(rig.node.head_ms, lambda now: now >= done.withdrawable_time.ToMilliseconds(), timeout=30)
    withdraw = {"requestId": rid(), "walletId": user.wallet_id, "kind": "WITHDRAW_KIND_UNSTAKED"}
    op = ok(rest(edge, "POST", "/api/v1/staking/withdraw", withdraw))["operation"]
    assert op["kind"] == "KIND_WITHDRAW_UNSTAKED"
    assert confirmed(rig.stubs.staking_operator(), op["operationId"]).amount_sun == 500 * TRX


@pytest.mark.parametrize("method", ["RequestEnergy", "DelegateResource", "GetStakingOperation"])
def test_internal_rpcs_are_not_reachable_through_the_edge(edge: Edge, method: str) -> None:
    with grpc.insecure_channel(edge.grpc_target) as channel, pytest.raises(grpc.RpcError) as err:
        channel.unary_unary(f"/tronpay.trx_staking.v1.TrxStakingService/{method}")(
            b"", metadata=edge.grpc_auth(), timeout=20
        )
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED, err.value  # the edge does not serve it at all
