"""Read RPCs over the node pool: transactions and their receipts, constant calls and energy estimates,
accounts, resources, token balances. Node JSON is read with visible=false (hex addresses)."""

from __future__ import annotations

import asyncio
from typing import Any

from tronpay.tron_client.v1 import tron_client_pb2 as pb

from services.common.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from services.common.tron.abi import decode_result, encode_args, revert_reason
from services.common.tron.wire import INT64_MAX
from services.tron_client import convert
from services.tron_client.network import Network
from services.tron_client.pool import NodePool

FEE_LIMIT_MARGIN_PERCENT = 20  # suggested fee_limit = energy x price + 20 %
STANDBY_WITNESSES = 127  # the witnesses sharing getWitness127PayPerBlock
STAKING_VIEW_CONCURRENCY = 16  # node calls in flight for one account's delegations


def _addr_hex(text: str, field: str) -> str:
    violations: list[FieldViolation] = []
    raw = convert.read_address(text, field, violations)
    if violations:
        raise InvalidArgument("invalid address", violations)
    return raw.hex()


def _node_failure(resp: dict[str, Any]) -> tuple[str, str] | None:
    """(code, message) when a java-tron answer reports a failure ({"Error"} or result.code)."""
    if "Error" in resp:
        return "OTHER_ERROR", str(resp["Error"])
    result = resp.get("result", {})
    if isinstance(result, dict) and result.get("code"):
        return str(result["code"]), convert.hexbytes(result.get("message")).decode(errors="replace")
    return None


class Queries:
    """See the module docstring."""

    def __init__(self, pool: NodePool, network: Network) -> None:
        self._pool = pool
        self._network = network

    # ---- transactions -----------------------------------------------------------------------------
    async def _block_ref(self, number: int, time_ms: int) -> pb.BlockRef:
        block = await self._pool.call("wallet/getblock", {"id_or_num": str(number), "detail": False})
        return convert.block_ref(number, str(block.get("blockID", "")), time_ms)

    async def transaction(self, txid: str) -> pb.GetTransactionResponse:
        txid = txid.lower()
        tx, info = await asyncio.gather(
            self._pool.call("wallet/gettransactionbyid", {"value": txid}),
            self._pool.call("wallet/gettransactioninfobyid", {"value": txid}),
        )
        if not tx:
            raise NotFound(
                "no node knows this transaction", reason="TRANSACTION_NOT_FOUND", metadata={"txid": txid}
            )
        raw = convert.hexbytes(tx.get("raw_data_hex"))
        sigs = [convert.hexbytes(s) for s in tx.get("signature", [])]
        out = pb.GetTransactionResponse(transaction=convert.transaction_message(raw, sigs))
        if not info:  # java-tron returns tx by id only once it is in a block; the receipt may lag a moment
            out.status = pb.TRANSACTION_STATUS_PENDING
            return out
        number = int(info.get("blockNumber", 0))
        block, height = await asyncio.gather(
            self._block_ref(number, int(info.get("blockTimeStamp", 0))), self._network.height()
        )
        out.block.CopyFrom(block)
        out.confirmations = max(0, height.head.number - number)
        if convert.info_result(info) != pb.TransactionInfo.RESULT_SUCCESS:
            out.status = pb.TRANSACTION_STATUS_FAILED
        elif number <= height.solidified.number:
            out.status = pb.TRANSACTION_STATUS_FINAL
        else:
            out.status = pb.TRANSACTION_STATUS_INCLUDED
        return out

    async def transaction_info(self, txid: str) -> pb.TransactionInfo:
        txid = txid.lower()
        info = await self._pool.call("wallet/gettransactioninfobyid", {"value": txid})
        if not info:
            raise NotFound(
                "the transaction is not in a block", reason="TRANSACTION_NOT_FOUND", metadata={"txid": txid}
            )
        number = int(info.get("blockNumber", 0))
        block, height = await asyncio.gather(
            self._block_ref(number, int(info.get("blockTimeStamp", 0))), self._network.height()
        )
        return convert.transaction_info(info, block, number <= height.solidified.number)

    # ---- contracts --------------------------------------------------------------------------------
    def _call_body(
        self, owner: str, contract: str, function_selector: str, parameter: bytes, call_value: int
    ) -> dict[str, Any]:
        if len(parameter) % 32:
            raise InvalidArgument(
                "invalid parameter", [FieldViolation("parameter", "ABI-encoded arguments are 32-byte words")]
            )
        body: dict[str, Any] = {
            "owner_address": _addr_hex(owner, "owner_address"),
            "contract_address": _addr_hex(contract, "contract_address"),
            "function_selector": function_selector,
            "parameter": parameter.hex(),
        }
        if call_value:
            body["call_value"] = call_value
        return body

    async def constant_call(
        self,
        owner: str,
        contract: str,
        function_selector: str,
        parameter: bytes,
        call_value: int = 0,
        *,
        solidified: bool = False,
    ) -> pb.TriggerConstantContractResponse:
        """Run the call on the head state, or on the solidified block's state (walletsolidity)."""
        body = self._call_body(owner, contract, function_selector, parameter, call_value)
        api = "walletsolidity" if solidified else "wallet"
        resp = await self._pool.call(f"{api}/triggerconstantcontract", body)
        failure = _node_failure(resp)
        if failure is not None:
            raise FailedPrecondition(
                f"the node cannot run this call: {failure[1]}",
                reason=failure[0],
                metadata={"node_code": failure[0], "node_message": failure[1]},
            )
        results = resp.get("constant_result", [])
        data = convert.hexbytes(results[0]) if results else b""
        message = resp.get("result", {}).get("message")
        reverted = (
            message is not None or resp.get("transaction", {}).get("ret", [{}])[0].get("ret") == "FAILED"
        )
        return pb.TriggerConstantContractResponse(
            success=not reverted,
            result=data,
            energy_used=int(resp.get("energy_used", 0)),
            revert_reason=(revert_reason(data) or convert.hexbytes(message).decode(errors="replace"))
            if reverted
            else "",
        )

    async def estimate_energy(
        self, owner: str, contract: str, function_selector: str, parameter: bytes, call_value: int = 0
    ) -> pb.EstimateEnergyResponse:
        body = self._call_body(owner, contract, function_selector, parameter, call_value)
        resp, fees = await asyncio.gather(
            self._pool.call("wallet/estimateenergy", body), self._network.fees()
        )
        failure = _node_failure(resp)
        if failure is not None and "estimate energy" in failure[1]:
            # The node has vm.estimateEnergy off: fall back to the constant call's energy_used.
            call = await self.constant_call(owner, contract, function_selector, parameter, call_value)
            if not call.success:
                raise FailedPrecondition(
                    f"the call reverts: {call.revert_reason}",
                    reason="CALL_REVERTED",
                    metadata={"revert_reason": call.revert_reason},
                )
            energy = call.energy_used
        elif failure is not None:
            raise FailedPrecondition(
                f"the call cannot be estimated: {failure[1]}",
                reason="CALL_REVERTED" if failure[0] == "CONTRACT_EXE_ERROR" else failure[0],
                metadata={"node_code": failure[0], "node_message": failure[1]},
            )
        else:
            energy = int(resp.get("energy_required", 0))
        price = fees.energy_price_sun
        suggested = energy * price * (100 + FEE_LIMIT_MARGIN_PERCENT) // 100
        if fees.max_fee_limit_sun:
            suggested = min(suggested, fees.max_fee_limit_sun)
        return pb.EstimateEnergyResponse(
            energy_required=energy, energy_price_sun=price, suggested_fee_limit_sun=suggested
        )

    # ---- accounts ---------------------------------------------------------------------------------
    async def account(
        self, address: str, view: pb.AccountView.ValueType = pb.ACCOUNT_VIEW_BASIC
    ) -> pb.Account:
        hexaddr = _addr_hex(address, "address")
        acc, reward = await asyncio.gather(
            self._pool.call("wallet/getaccount", {"address": hexaddr}),
            self._pool.call("wallet/getReward", {"address": hexaddr}),
        )
        out = convert.account(address, acc, int(reward.get("reward", 0)))
        if view == pb.ACCOUNT_VIEW_STAKING and out.exists:
            await self._staking_view(hexaddr, out)
        return out

    async def _staking_view(self, hexaddr: str, out: pb.Account) -> None:
        """Each delegation from and to the account (one getdelegatedresourcev2 per counterparty), what it can
        still delegate, and its standing if it is a witness."""
        index, bandwidth, energy = await asyncio.gather(
            self._pool.call("wallet/getdelegatedresourceaccountindexv2", {"value": hexaddr}),
            self._pool.call("wallet/getcandelegatedmaxsize", {"owner_address": hexaddr, "type": 0}),
            self._pool.call("wallet/getcandelegatedmaxsize", {"owner_address": hexaddr, "type": 1}),
        )
        out.delegatable_bandwidth_sun = int(bandwidth.get("max_size", 0))
        out.delegatable_energy_sun = int(energy.get("max_size", 0))
        gate = asyncio.Semaphore(STAKING_VIEW_CONCURRENCY)

        async def pair(src: str, dst: str) -> list[pb.DelegatedResource]:
            async with gate:
                resp = await self._pool.call(
                    "wallet/getdelegatedresourcev2", {"fromAddress": src, "toAddress": dst}
                )
            return convert.delegations(resp.get("delegatedResource", []))

        outgoing = [pair(hexaddr, str(to)) for to in index.get("toAccounts", [])]
        incoming = [pair(str(src), hexaddr) for src in index.get("fromAccounts", [])]
        results = await asyncio.gather(*outgoing, *incoming)
        for i, found in enumerate(results):
            (out.delegated_out if i < len(outgoing) else out.delegated_in).extend(found)
        if out.is_witness:
            out.witness.CopyFrom(await self._witness_standing(hexaddr))

    async def _witness_standing(self, hexaddr: str) -> pb.WitnessStanding:
        listed, brokerage = await asyncio.gather(
            self._pool.call("wallet/listwitnesses", {}),
            self._pool.call("wallet/getBrokerage", {"address": hexaddr}),
        )
        witnesses = sorted(
            listed.get("witnesses", []), key=lambda w: (-int(w.get("voteCount", 0)), str(w.get("address")))
        )
        standing = pb.WitnessStanding(
            witness_count=len(witnesses),
            brokerage_percent=int(brokerage.get("brokerage", 0)),
            standby_votes_total=sum(int(w.get("voteCount", 0)) for w in witnesses[:STANDBY_WITNESSES]),
        )
        for rank, w in enumerate(witnesses, start=1):
            if str(w.get("address", "")).lower() == hexaddr:
                standing.rank, standing.vote_count = rank, int(w.get("voteCount", 0))
                standing.url = str(w.get("url", ""))
        return standing

    async def account_resource(self, address: str) -> pb.AccountResource:
        resp = await self._pool.call("wallet/getaccountresource", {"address": _addr_hex(address, "address")})
        return convert.account_resource(address, resp)

    async def token_balance(
        self, address: str, token: str, *, solidified: bool = False
    ) -> pb.GetTokenBalanceResponse:
        holder = bytes.fromhex(_addr_hex(address, "address"))
        _addr_hex(token, "token_address")
        param = encode_args(["address"], [holder])
        call, height = await asyncio.gather(
            self.constant_call(address, token, "balanceOf(address)", param, solidified=solidified),
            self._network.height(),
        )
        if not call.success or len(call.result) < 32:
            raise FailedPrecondition(
                "balanceOf failed on this contract (not a TRC20 token?)",
                reason="NOT_A_TOKEN",
                metadata={"token_address": token, "revert_reason": call.revert_reason},
            )
        (balance,) = decode_result(["uint256"], call.result[:32])
        if balance > INT64_MAX:
            raise FailedPrecondition("the balance does not fit in int64", reason="BALANCE_OUT_OF_RANGE")
        at = height.solidified if solidified else height.head
        return pb.GetTokenBalanceResponse(
            balance=balance, block=convert.block_ref(at.number, at.block_id, at.time_ms)
        )

    async def contract(self, address: str) -> pb.SmartContractInfo:
        """getcontract: the deployed contract, NOT_FOUND when there is none (the node answers {})."""
        c = await self._pool.call("wallet/getcontract", {"value": _addr_hex(address, "contract_address")})
        if not c or not c.get("contract_address"):
            raise NotFound(
                "no contract is deployed at this address",
                reason="CONTRACT_NOT_FOUND",
                metadata={"contract_address": address},
            )
        return pb.SmartContractInfo(
            contract_address=address,
            origin_address=convert.base58(str(c.get("origin_address", ""))),
            name=str(c.get("name", "")),
            consume_user_resource_percent=int(c.get("consume_user_resource_percent", 0)),
            origin_energy_limit=int(c.get("origin_energy_limit", 0)),
            code_hash=convert.hexbytes(c.get("code_hash")),
        )

    async def chain_parameters(self) -> pb.GetChainParametersResponse:
        params = await self._network.chain_parameters()
        return pb.GetChainParametersResponse(
            parameters=[pb.ChainParameter(key=k, value=v) for k, v in params]
        )
