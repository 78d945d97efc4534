"""`tronpay staking`: status and rewards of an address, stake and unstake (trx-staking through the edge)."""

from __future__ import annotations

import click
from tronpay.common.v1 import common_pb2
from tronpay.trx_staking.v1 import trx_staking_pb2 as pb
from tronpay.trx_staking.v1 import trx_staking_pb2_grpc as pb_grpc

from tronpay_cli import output
from tronpay_cli.amounts import option_amount
from tronpay_cli.base import command, request_id_option
from tronpay_cli.connection import App, new_request_id

RESOURCES = {"energy": common_pb2.RESOURCE_TYPE_ENERGY, "bandwidth": common_pb2.RESOURCE_TYPE_BANDWIDTH}


@click.group("staking")
def staking() -> None:
    """TRX staking (Stake 2.0): status, rewards, stake, unstake."""


def stub(app: App) -> pb_grpc.TrxStakingServiceStub:
    return pb_grpc.TrxStakingServiceStub(app.edge())


def _resource(value: int) -> str:
    return output.enum_name(common_pb2.ResourceType, value, "RESOURCE_TYPE_")


@command(staking, "status")
@click.argument("address")
def status(app: App, address: str) -> None:
    """Stakes, pending unstakes, delegations, energy, bandwidth and votes of an address."""
    response = app.call(stub(app).GetStakingStatus, pb.GetStakingStatusRequest(address=address))
    if app.as_json:
        output.print_json(response)
        return
    s = response.status
    output.stdout.print(
        output.fields(
            f"staking status of {s.address}",
            [
                ("liquid TRX", output.units(s.balance_sun)),
                ("staked TRX", output.units(s.total_staked_sun)),
                ("withdrawable TRX", output.units(s.withdrawable_sun)),
                ("energy used / limit", f"{s.energy_used} / {s.energy_limit}"),
                ("bandwidth used / limit", f"{s.bandwidth_used} / {s.bandwidth_limit}"),
                ("tron power used / total", f"{s.tron_power_used} / {s.tron_power}"),
                ("unstakes still possible", s.available_unstake_count),
                ("read at", output.when(s.update_time)),
            ],
        )
    )
    stakes = [(_resource(r.resource), output.units(r.amount_sun)) for r in s.staked]
    output.stdout.print(output.table("stakes", ("resource", "TRX"), stakes))
    pending = [
        (_resource(u.resource), output.units(u.amount_sun), output.when(u.withdrawable_time))
        for u in s.pending_unstakes
    ]
    if pending:
        output.stdout.print(output.table("pending unstakes", ("resource", "TRX", "withdrawable at"), pending))
    delegations = [
        (direction, d.from_address, d.to_address, _resource(d.resource), output.units(d.amount_sun),
         output.when(d.lock_expire_time))
        for direction, group in (("out", s.delegated_out), ("in", s.delegated_in))
        for d in group
    ]  # fmt: skip
    if delegations:
        columns = ("direction", "from", "to", "resource", "TRX", "locked until")
        output.stdout.print(output.table("delegations", columns, delegations))
    if s.votes:
        votes = [(v.witness_address, v.vote_count) for v in s.votes]
        output.stdout.print(output.table("votes", ("witness", "votes"), votes))


@command(staking, "rewards")
@click.argument("address")
def rewards(app: App, address: str) -> None:
    """Voting rewards of an address: unclaimed, claimed, next claim."""
    response = app.call(stub(app).GetStakingRewards, pb.GetStakingRewardsRequest(address=address))
    if app.as_json:
        output.print_json(response)
        return
    r = response
    output.stdout.print(
        output.fields(
            f"rewards of {r.address}",
            [
                ("unclaimed TRX", output.units(r.unclaimed_reward_sun)),
                ("claimed TRX", output.units(r.claimed_reward_sun)),
                ("estimated TRX per day", output.units(r.estimated_reward_per_day_sun)),
                ("last claim", output.when(r.last_claim_time)),
                ("next claim", output.when(r.next_claim_time)),
            ],
        )
    )


def _show_operation(app: App, request_id: str, response: pb.StakeResponse | pb.UnstakeResponse) -> None:
    if app.as_json:
        output.print_json({"requestId": request_id, **output.message_dict(response)})
        return
    op = response.operation
    output.stdout.print(
        output.fields(
            f"staking operation {op.operation_id}",
            [
                ("request id", request_id),
                ("kind", output.enum_name(pb.StakingOperation.Kind, op.kind, "KIND_")),
                ("state", output.enum_name(pb.StakingOperation.State, op.state, "STATE_")),
                ("owner", op.owner_address),
                ("TRX", output.units(op.amount_sun)),
                ("resource", _resource(op.resource)),
                ("receiver", op.receiver_address),
                ("txid", op.txid),
                ("withdrawable at", output.when(op.withdrawable_time)),
            ],
        )
    )


@command(staking, "stake")
@click.option("--wallet", "wallet_id", required=True, help="Wallet staking.")
@click.option("--amount", required=True, help="TRX to stake in sun (1 TRX = 1000000), or see --decimal.")
@click.option("--decimal", is_flag=True, help="--amount is in whole TRX, converted exactly (6 decimals).")
@click.option("--resource", type=click.Choice(sorted(RESOURCES)), required=True, help="Resource to obtain.")
@click.option(
    "--owner", "owner_address", default="", help="Staking address in the wallet (default: primary)."
)
@click.option("--receiver", "receiver_address", default="", help="Delegate the resource to this address.")
@request_id_option
def stake(
    app: App,
    wallet_id: str,
    amount: str,
    decimal: bool,
    resource: str,
    owner_address: str,
    receiver_address: str,
    request_id: str | None,
) -> None:
    """Stake TRX for energy or bandwidth (at least 1 TRX)."""
    request = pb.StakeRequest(
        request_id=request_id or new_request_id(),
        wallet_id=wallet_id,
        owner_address=owner_address,
        amount_sun=option_amount(app, amount, "--amount", decimal=decimal),
        resource=RESOURCES[resource],
        receiver_address=receiver_address,
    )
    _show_operation(app, request.request_id, app.call(stub(app).Stake, request))


@command(staking, "unstake")
@click.option("--wallet", "wallet_id", required=True, help="Wallet unstaking.")
@click.option("--amount", required=True, help="TRX to unstake in sun, or see --decimal.")
@click.option("--decimal", is_flag=True, help="--amount is in whole TRX, converted exactly (6 decimals).")
@click.option(
    "--resource", type=click.Choice(sorted(RESOURCES)), required=True, help="Resource the stake is for."
)
@click.option(
    "--owner", "owner_address", default="", help="Staking address in the wallet (default: primary)."
)
@request_id_option
def unstake(
    app: App,
    wallet_id: str,
    amount: str,
    decimal: bool,
    resource: str,
    owner_address: str,
    request_id: str | None,
) -> None:
    """Start unstaking TRX; it is withdrawable after the network's wait."""
    request = pb.UnstakeRequest(
        request_id=request_id or new_request_id(),
        wallet_id=wallet_id,
        owner_address=owner_address,
        amount_sun=option_amount(app, amount, "--amount", decimal=decimal),
        resource=RESOURCES[resource],
    )
    _show_operation(app, request.request_id, app.call(stub(app).Unstake, request))
