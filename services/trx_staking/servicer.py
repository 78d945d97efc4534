"""trx-staking's gRPC servicer: validation beyond protovalidate (address checksums, self-delegation, duplicate
witnesses), request_id handling, delegation to operations.py (the mutations), reports.py (status, rewards)
and broker.py (RequestEnergy).

Every mutating RPC runs once per request_id (`@idempotent`); beneath that, its operation is created once per
request_id too (its id derives from it and the kind), which is what an irreversible broadcast needs.
"""

from __future__ import annotations

from typing import Any

from tronpay.trx_staking.v1 import trx_staking_pb2 as pb
from tronpay.trx_staking.v1 import trx_staking_pb2_grpc

from services.common import errors
from services.common.chain_ops import Operation, operation_id
from services.common.idempotency import fingerprint, idempotent
from services.common.server import Runtime
from services.common.tron.address import from_base58
from services.trx_staking.broker import EnergyBroker
from services.trx_staking.convert import operation_pb
from services.trx_staking.operations import PREFIX, REQUEST, StakingOperations
from services.trx_staking.reports import Reports
from services.trx_staking.rules import Intent, Kind
from services.trx_staking.settings import TrxStakingSettings

Ctx = Any
WITHDRAW_KINDS = {
    pb.WITHDRAW_KIND_UNSTAKED: Kind.WITHDRAW_UNSTAKED,
    pb.WITHDRAW_KIND_REWARDS: Kind.CLAIM_REWARDS,
}


def _check_addresses(**by_field: str) -> None:
    """Each non-empty field must hold a TRON address (checksum and prefix; the contract checks the shape)."""
    bad = []
    for field, value in by_field.items():
        if not value:
            continue
        try:
            from_base58(value)
        except ValueError as exc:
            bad.append(errors.FieldViolation(field, f"not a TRON address: {exc}", "INVALID_ADDRESS"))
    if bad:
        raise errors.InvalidArgument("invalid address", bad, reason="INVALID_ADDRESS")


def _not_the_owner(receiver: str, owner: str) -> None:
    if receiver == owner:
        raise errors.InvalidArgument(
            "an account cannot delegate to itself",
            [errors.FieldViolation("receiver_address", "is the owner's address", "RECEIVER_IS_OWNER")],
        )


class TrxStakingServicer(trx_staking_pb2_grpc.TrxStakingServiceServicer):
    """TrxStakingService."""

    def __init__(
        self,
        rt: Runtime[TrxStakingSettings],
        ops: StakingOperations,
        reports: Reports,
        broker: EnergyBroker,
    ) -> None:
        self._ops = ops
        self._reports = reports
        self._broker = broker
        self.idempotency = rt.idempotency

    async def _create(self, request: Any, kind: Kind, intent: Intent) -> Operation:
        return await self._ops.create(
            operation_id(PREFIX[kind], request.request_id), intent, request_id=request.request_id,
            fingerprint=fingerprint(request), wallet_id=request.wallet_id, origin=REQUEST,
        )  # fmt: skip

    async def _owner(self, request: Any) -> str:
        return await self._ops.owner_of(request.wallet_id, request.owner_address, "owner_address")

    # ---- operations -------------------------------------------------------------------------------
    @idempotent(pb.StakeResponse)
    async def Stake(self, request: pb.StakeRequest, context: Ctx) -> pb.StakeResponse:
        r = request
        _check_addresses(owner_address=r.owner_address, receiver_address=r.receiver_address)
        owner = await self._owner(r)
        _not_the_owner(r.receiver_address, owner)
        op = await self._create(
            r, Kind.STAKE, Intent(Kind.STAKE, owner, r.amount_sun, r.resource, r.receiver_address)
        )
        return pb.StakeResponse(operation=operation_pb(op))

    @idempotent(pb.UnstakeResponse)
    async def Unstake(self, request: pb.UnstakeRequest, context: Ctx) -> pb.UnstakeResponse:
        r = request
        _check_addresses(owner_address=r.owner_address)
        owner = await self._owner(r)
        op = await self._create(r, Kind.UNSTAKE, Intent(Kind.UNSTAKE, owner, r.amount_sun, r.resource))
        return pb.UnstakeResponse(operation=operation_pb(op))

    @idempotent(pb.WithdrawResponse)
    async def Withdraw(self, request: pb.WithdrawRequest, context: Ctx) -> pb.WithdrawResponse:
        r = request
        _check_addresses(owner_address=r.owner_address)
        owner = await self._owner(r)
        kind = WITHDRAW_KINDS[r.kind]
        op = await self._create(r, kind, Intent(kind, owner))
        return pb.WithdrawResponse(operation=operation_pb(op))

    @idempotent(pb.DelegateResourceResponse)
    async def DelegateResource(
        self, request: pb.DelegateResourceRequest, context: Ctx
    ) -> pb.DelegateResourceResponse:
        r = request
        _check_addresses(owner_address=r.owner_address, receiver_address=r.receiver_address)
        owner = await self._owner(r)
        _not_the_owner(r.receiver_address, owner)
        intent = Intent(
            Kind.DELEGATE, owner, r.amount_sun, r.resource, r.receiver_address, r.lock_period_blocks
        )
        return pb.DelegateResourceResponse(
            operation=operation_pb(await self._create(r, Kind.DELEGATE, intent))
        )

    @idempotent(pb.UndelegateResourceResponse)
    async def UndelegateResource(
        self, request: pb.UndelegateResourceRequest, context: Ctx
    ) -> pb.UndelegateResourceResponse:
        r = request
        _check_addresses(owner_address=r.owner_address, receiver_address=r.receiver_address)
        owner = await self._owner(r)
        _not_the_owner(r.receiver_address, owner)
        intent = Intent(Kind.UNDELEGATE, owner, r.amount_sun, r.resource, r.receiver_address)
        return pb.UndelegateResourceResponse(
            operation=operation_pb(await self._create(r, Kind.UNDELEGATE, intent))
        )

    @idempotent(pb.VoteWitnessesResponse)
    async def VoteWitnesses(self, request: pb.VoteWitnessesRequest, context: Ctx) -> pb.VoteWitnessesResponse:
        r = request
        _check_addresses(owner_address=r.owner_address)
        _check_addresses(**{f"votes[{i}].witness_address": v.witness_address for i, v in enumerate(r.votes)})
        seen: set[str] = set()
        for i, v in enumerate(r.votes):
            if v.witness_address in seen:
                raise errors.InvalidArgument(
                    "a witness is voted twice",
                    [
                        errors.FieldViolation(
                            f"votes[{i}].witness_address", "voted twice", "DUPLICATE_WITNESS"
                        )
                    ],
                )
            seen.add(v.witness_address)
        owner = await self._owner(r)
        votes = tuple((v.witness_address, v.vote_count) for v in r.votes)
        op = await self._create(r, Kind.VOTE, Intent(Kind.VOTE, owner, votes=votes))
        return pb.VoteWitnessesResponse(operation=operation_pb(op))

    async def GetStakingOperation(
        self, request: pb.GetStakingOperationRequest, context: Ctx
    ) -> pb.GetStakingOperationResponse:
        op = await self._ops.get(request.operation_id)
        if op is None:
            raise errors.NotFound(
                "staking operation not found",
                reason="STAKING_OPERATION_NOT_FOUND",
                metadata={"operation_id": request.operation_id},
            )
        return pb.GetStakingOperationResponse(operation=operation_pb(op, await self._ops.settlement(op)))

    # ---- reads ------------------------------------------------------------------------------------
    async def GetStakingStatus(
        self, request: pb.GetStakingStatusRequest, context: Ctx
    ) -> pb.GetStakingStatusResponse:
        _check_addresses(address=request.address)
        return pb.GetStakingStatusResponse(status=await self._reports.status(request.address))

    async def GetStakingRewards(
        self, request: pb.GetStakingRewardsRequest, context: Ctx
    ) -> pb.GetStakingRewardsResponse:
        _check_addresses(address=request.address)
        return await self._reports.rewards(request.address)

    # ---- the energy broker ------------------------------------------------------------------------
    @idempotent(pb.RequestEnergyResponse)
    async def RequestEnergy(self, request: pb.RequestEnergyRequest, context: Ctx) -> pb.RequestEnergyResponse:
        _check_addresses(address=request.address)
        return await self._broker.request(request.address, request.energy)
