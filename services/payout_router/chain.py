"""What payout-router reads from the chain (through tron-client) and from wallet-manager, and the router
contract's calls and events. Signing and broadcasting happen only in services.common.chain_ops."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc
from google.protobuf import duration_pb2
from tronpay.common.v1 import common_pb2
from tronpay.tron_client.v1 import tron_client_pb2 as tc
from tronpay.wallet_manager.v1 import wallet_manager_pb2 as wm

from services.common import errors
from services.common.chain_ops import PeerReads, upstream_error
from services.common.clients import ServiceClients
from services.common.tron.abi import decode_result, encode_args
from services.common.tron.address import from_base58, keccak256, to_base58

DISBURSE_BATCH = "disburseBatch(bytes32,bytes32[],uint256[])"
DISBURSE_BATCH_KYC = "disburseBatchKYC(bytes32,bytes32[],uint256[],bytes32[])"
DISBURSER_ROLE = keccak256(b"DISBURSER_ROLE")
# PayoutRouterBase.Failure, by its uint8 value (the `reason` of PayoutFailed).
FAILURES = (
    "NONE",
    "INVALID_RECIPIENT",
    "ZERO_AMOUNT",
    "OVER_PER_TX_LIMIT",
    "OVER_DAILY_LIMIT",
    "INSUFFICIENT_BALANCE",
    "RECIPIENT_BLACKLISTED",
    "TRANSFER_FAILED",
    "KYC_MISSING",
    "KYC_EXPIRED",
    "KYC_INVALID_SIGNATURE",
    "OVER_RECIPIENT_DAILY_LIMIT",
)
PAID = keccak256(b"Paid(bytes32,address,uint256)")
ALREADY_PAID = keccak256(b"AlreadyPaid(bytes32,address,uint256)")
PAYOUT_FAILED = keccak256(b"PayoutFailed(bytes32,address,uint256,uint8)")
VIEW_CONCURRENCY = 16


def onchain_id(payout_id: str) -> bytes:
    """The payout's bytes32 id in the router: keccak256 of the service's payout id (stable, unique)."""
    return keccak256(payout_id.encode())


def packed(recipient: str, amount: int) -> int:
    """disburseBatch's per-payout word: amount << 160 | the 20-byte TVM address."""
    return amount << 160 | int.from_bytes(from_base58(recipient)[1:], "big")


def batch_parameter(
    batch_id: str, payouts: list[tuple[str, str, int]], attestations: list[bytes] | None = None
) -> bytes:
    """disburseBatch's ABI parameters for (payout_id, recipient, amount) triples; disburseBatchKYC's with the
    recipients' attestation words."""
    ids = [onchain_id(p) for p, _, _ in payouts]
    words = [packed(to, amount) for _, to, amount in payouts]
    head = keccak256(batch_id.encode())
    if attestations is None:
        return encode_args(["bytes32", "bytes32[]", "uint256[]"], [head, ids, words])
    return encode_args(["bytes32", "bytes32[]", "uint256[]", "bytes32[]"], [head, ids, words, attestations])


@dataclass(frozen=True, slots=True)
class Outcome:
    """One payout's event in a batch transaction: Paid, AlreadyPaid or PayoutFailed (with its reason)."""

    event: str
    recipient: str
    amount: int
    reason: str = ""


def outcomes(info: tc.TransactionInfo, router: str) -> dict[bytes, Outcome]:
    """The router's per-payout events in a transaction's receipt, by on-chain payout id."""
    out: dict[bytes, Outcome] = {}
    for log in info.logs:
        if log.address != router:
            continue
        topics = [bytes(t) for t in log.topics]
        if len(topics) < 3:
            continue
        data = bytes(log.data)
        to = to_base58(b"\x41" + topics[2][-20:])
        if topics[0] in (PAID, ALREADY_PAID):
            event = "Paid" if topics[0] == PAID else "AlreadyPaid"
            out[topics[1]] = Outcome(event, to, int.from_bytes(data[:32], "big"))
        elif topics[0] == PAYOUT_FAILED:
            amount, reason = int.from_bytes(data[:32], "big"), int.from_bytes(data[32:64], "big")
            name = FAILURES[reason] if reason < len(FAILURES) else f"FAILURE_{reason}"
            out[topics[1]] = Outcome("PayoutFailed", to, amount, name)
    return out


@dataclass(frozen=True, slots=True)
class RouterState:
    """The router's limits and state, read at request time (never cached)."""

    paused: bool
    max_per_tx: int
    remaining_today: int
    balance: int
    max_batch_size: int


class Chain(PeerReads):
    """tron-client reads and builds (wallet lookups: PeerReads)."""

    def __init__(self, clients: ServiceClients) -> None:
        super().__init__(clients)
        self._views = asyncio.Semaphore(VIEW_CONCURRENCY)

    # ---- contract views ---------------------------------------------------------------------------
    async def view(self, contract: str, signature: str, types: list[str], args: list[object]) -> bytes | None:
        """Return data of a read-only call; None when it reverts."""
        req = tc.TriggerConstantContractRequest(
            owner_address=contract,
            contract_address=contract,
            function_selector=signature,
            parameter=encode_args(types, args),
        )
        async with self._views:
            try:
                resp = await self._tron.TriggerConstantContract(req)
            except grpc.aio.AioRpcError as exc:
                raise upstream_error(exc, "tron-client", f"to call {signature}") from None
        return bytes(resp.result) if resp.success and len(resp.result) >= 32 else None

    async def _uint(self, contract: str, signature: str, types: list[str], args: list[object]) -> int:
        data = await self.view(contract, signature, types, args)
        if data is None:
            raise errors.FailedPrecondition(
                f"{signature} failed on {contract}: not a payout router",
                reason="NOT_A_PAYOUT_ROUTER",
                metadata={"contract": contract},
            )
        return int(decode_result(["uint256"], data[:32])[0])

    async def router_state(self, router: str) -> RouterState:
        paused, per_tx, left, balance, size = await asyncio.gather(
            self._uint(router, "paused()", [], []),
            self._uint(router, "maxPerTx()", [], []),
            self._uint(router, "remainingToday()", [], []),
            self._uint(router, "balance()", [], []),
            self._uint(router, "maxBatchSize()", [], []),
        )
        return RouterState(bool(paused), per_tx, left, balance, size)

    async def is_disburser(self, router: str, address: str) -> bool:
        return bool(
            await self._uint(
                router, "hasRole(bytes32,address)", ["bytes32", "address"], [DISBURSER_ROLE, address]
            )
        )

    async def blacklisted(self, token: str, address: str) -> bool:
        data = await self.view(token, "isBlackListed(address)", ["address"], [address])
        return data is not None and bool(decode_result(["bool"], data[:32])[0])

    async def paid(self, router: str, payout_id: str) -> tuple[str, int] | None:
        """The router's record of the payout (recipient, amount), None when it was never paid."""
        data = await self.view(router, "payoutOf(bytes32)", ["bytes32"], [onchain_id(payout_id)])
        if data is None or len(data) < 64:
            raise errors.Unavailable("cannot read the router's payout record", reason="ROUTER_UNREADABLE")
        to, amount = decode_result(["address", "uint256"], data[:64])
        return None if amount == 0 else (str(to), int(amount))

    async def kyc_message(self, router: str, recipient: str, kyc_hash: bytes, expiry: int) -> bytes:
        """The 32-byte message a compliance signer signs for `recipient` (the KYC router's own view)."""
        data = await self.view(
            router,
            "kycMessage(address,bytes32,uint256)",
            ["address", "bytes32", "uint256"],
            [recipient, kyc_hash, expiry],
        )
        if data is None:
            raise errors.FailedPrecondition(
                "kycMessage failed: not a PayoutRouterKYC",
                reason="NOT_A_KYC_ROUTER",
                metadata={"contract": router},
            )
        return data[:32]

    async def kyc_failure(
        self, router: str, recipient: str, kyc_hash: bytes, expiry: int, r: bytes, vs: bytes
    ) -> str:
        """The router's verdict on an attestation now: "NONE" or the Failure name (KYC_EXPIRED, ...)."""
        n = await self._uint(
            router,
            "kycFailure(address,bytes32,uint256,bytes32,bytes32)",
            ["address", "bytes32", "uint256", "bytes32", "bytes32"],
            [recipient, kyc_hash, expiry, r, vs],
        )
        return FAILURES[n] if n < len(FAILURES) else f"FAILURE_{n}"

    async def sign_message(
        self, wallet_id: str, message: bytes, request_id: str, purpose: str
    ) -> tuple[bytes, str]:
        """wallet-manager's TIP-191 signature of `message` with the wallet's key, and the signer's address."""
        req = wm.SignMessageRequest(
            request_id=request_id, wallet_id=wallet_id, message=message, purpose=purpose
        )
        try:
            resp = await self._wallets.SignMessage(req)
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "wallet-manager", "to sign the KYC attestation") from None
        return bytes(resp.signature), resp.signer_address

    # ---- accounts, fees, estimates, receipts -------------------------------------------------------
    async def account(self, address: str) -> tc.Account:
        try:
            return (await self._tron.GetAccount(tc.GetAccountRequest(address=address))).account
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "tron-client", "to read the account") from None

    async def estimate(self, owner: str, contract: str, signature: str, parameter: bytes) -> tuple[int, int]:
        """(energy, price in sun) of a call; FailedPrecondition CALL_WOULD_REVERT when it reverts."""
        req = tc.EstimateEnergyRequest(
            owner_address=owner, contract_address=contract, function_selector=signature, parameter=parameter
        )
        try:
            resp = await self._tron.EstimateEnergy(req)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                raise errors.FailedPrecondition(
                    f"the batch call would revert: {exc.details()}", reason="CALL_WOULD_REVERT"
                ) from None
            raise upstream_error(exc, "tron-client", "to estimate the energy") from None
        return resp.energy_required, resp.energy_price_sun

    async def max_fee_limit(self) -> int:
        try:
            return (await self._tron.GetNetworkFees(tc.GetNetworkFeesRequest())).max_fee_limit_sun
        except grpc.aio.AioRpcError as exc:
            raise upstream_error(exc, "tron-client", "to read the network fees") from None

    async def info(self, txid: str) -> tc.TransactionInfo | None:
        try:
            return (await self._tron.GetTransactionInfo(tc.GetTransactionInfoRequest(txid=txid))).info
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    # ---- building ---------------------------------------------------------------------------------
    async def build_call(
        self,
        owner: str,
        contract: str,
        signature: str,
        parameter: bytes,
        fee_limit: int,
        expiration: int,
        permission_id: int = 0,
    ) -> common_pb2.Transaction:
        req = tc.BuildTransactionRequest(
            owner_address=owner,
            trigger_smart_contract=tc.TriggerSmartContractParams(
                contract_address=contract,
                function_selector=signature,
                parameter=parameter,
                fee_limit_sun=fee_limit,
            ),
            expiration=duration_pb2.Duration(seconds=expiration),
            permission_id=permission_id,
        )
        return (await self._tron.BuildTransaction(req)).transaction

    async def build_transfer(
        self, owner: str, to: str, amount: int, expiration: int, permission_id: int = 0
    ) -> common_pb2.Transaction:
        req = tc.BuildTransactionRequest(
            owner_address=owner,
            transfer=tc.TransferParams(to_address=to, amount_sun=amount),
            expiration=duration_pb2.Duration(seconds=expiration),
            permission_id=permission_id,
        )
        return (await self._tron.BuildTransaction(req)).transaction
