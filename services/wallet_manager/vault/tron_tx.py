"""Wire-level parsing of a TRON Transaction.raw: what a signature would authorise.

Only the bytes the caller sends are trusted: the txID is recomputed here as sha256(raw) and every field
a policy checks is decoded from those same bytes. Field numbers: tron-protocol.md §1.1/§1.2.

The wire primitives are the shared ones (services.common.tron.wire); their WireError becomes
MalformedTransaction here, at the vault's boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.common.tron.abi import TRC20_APPROVE, TRC20_TRANSFER, TRC20_TRANSFER_FROM
from services.common.tron.address import InvalidAddress, to_base58
from services.common.tron.tx import CONTRACT_TYPE_NAMES, RESOURCE_NAMES, TYPE_URL_PREFIX, txid_digest
from services.common.tron.wire import Fields, WireError, split_fields

from .errors import MalformedTransaction

TRX = "TRX"
# Not in services.common.tron.abi: only the vault reads it (an approve that adds to the allowance).
TRC20_INCREASE_ALLOWANCE = bytes.fromhex("39509351")  # increaseAllowance(address,uint256)
TOKEN_SELECTORS = {
    TRC20_TRANSFER: "transfer",
    TRC20_APPROVE: "approve",
    TRC20_INCREASE_ALLOWANCE: "increaseAllowance",
}


@dataclass(frozen=True)
class ParsedTransaction:
    """What the bytes say, decoded. Whether a TRC20-shaped call is a token operation depends on the
    contract it calls (the deployment's configured tokens): the policy decides that, not the parser."""

    raw: bytes = field(repr=False)
    txid: bytes
    contract_type: int
    contract_type_name: str
    type_url: str
    owner: str
    permission_id: int
    destination: str | None  # recipient, spender, receiver, or the called contract
    amount: int | None  # sun / token base units / frozen balance, per contract
    asset: str | None
    # "transfer" | "approve" | "increaseAllowance" | "transferFrom" for a value-free call of that shape
    token_method: str | None
    token_contract: str | None
    contract_address: str | None  # the contract a TriggerSmartContract calls
    call_value: int  # TRX sent with a TriggerSmartContract or to a CreateSmartContract's new contract
    call_data: bytes = field(repr=False)
    resource: str | None
    memo: bytes
    expiration: int  # ms since epoch
    timestamp: int
    fee_limit: int
    ref_block_bytes: bytes
    ref_block_hash: bytes
    votes: tuple[tuple[str, int], ...] = ()
    call_token_value: int = 0  # TRC10 sent with a TriggerSmartContract or CreateSmartContract
    call_token_id: int = 0
    lock: bool = False  # DelegateResourceContract.lock
    permission_keys: tuple[str, ...] = ()  # every key address an AccountPermissionUpdateContract sets

    @property
    def txid_hex(self) -> str:
        return self.txid.hex()


def _addr(b: bytes, what: str) -> str:
    try:
        return to_base58(b)
    except InvalidAddress:
        raise MalformedTransaction(f"{what}: not a 21-byte 0x41 address") from None


def _word_address(word: bytes) -> str:
    if any(word[:12]):
        raise MalformedTransaction("ABI address word has non-zero high bytes")
    return _addr(b"\x41" + word[12:], "ABI address")


def parse_transaction(raw: bytes) -> ParsedTransaction:
    """Decode raw_data bytes; raise MalformedTransaction for anything not a single well-formed contract."""
    try:
        return _parse(bytes(raw))
    except WireError as exc:
        raise MalformedTransaction(str(exc)) from None


def _parse(raw: bytes) -> ParsedTransaction:
    if not raw:
        raise MalformedTransaction("empty raw_data")
    top = Fields(raw)
    contracts = top.get_all_bytes(11)
    if len(contracts) != 1:
        raise MalformedTransaction("exactly one contract is required")
    c = Fields(contracts[0])
    ctype = c.get_int(1)
    name = CONTRACT_TYPE_NAMES.get(ctype)
    if name is None:
        raise MalformedTransaction("unknown contract type")
    any_ = Fields(c.get_bytes(2))
    type_url = any_.get_bytes(1).decode("utf-8", "replace")
    # java-tron unpacks by type_url; a mismatch would make the node execute something else than we checked.
    if type_url != TYPE_URL_PREFIX + name:
        raise MalformedTransaction("parameter type_url does not match the contract type")
    p = Fields(any_.get_bytes(2))
    # Every contract carries owner_address in field 1 except TransferAssetContract (1 is asset_name).
    owner = _addr(p.get_bytes(2 if ctype == 2 else 1), "owner_address")

    destination: str | None = None
    amount: int | None = None
    asset: str | None = None
    token_method = token_contract = contract = resource = None
    call_value, call_data, call_token_value, call_token_id, lock = 0, b"", 0, 0, False
    votes: tuple[tuple[str, int], ...] = ()
    permission_keys: tuple[str, ...] = ()
    if ctype == 1:  # TransferContract
        destination, amount, asset = _addr(p.get_bytes(2), "to_address"), p.get_int(3), TRX
    elif ctype == 2:  # TransferAssetContract
        asset = "TRC10:" + p.get_bytes(1).decode("ascii", "replace")
        destination, amount = _addr(p.get_bytes(3), "to_address"), p.get_int(4)
    elif ctype == 31:  # TriggerSmartContract
        contract = _addr(p.get_bytes(2), "contract_address")
        call_value, call_data = p.get_int(3), p.get_bytes(4)
        call_token_value, call_token_id = p.get_int(5), p.get_int(6)
        destination, amount, asset = contract, call_value, TRX
        sel, args = call_data[:4], call_data[4:]
        # A token call that also sends TRX (call_value) or TRC10 (call_token_value) would have that value
        # checked by nobody: only a value-free call counts as a TRC20 transfer/approve.
        value_free = not call_value and not call_token_value
        if value_free and sel in TOKEN_SELECTORS and len(args) == 64:
            token_method = TOKEN_SELECTORS[sel]
            destination, amount = _word_address(args[:32]), int.from_bytes(args[32:], "big")
            token_contract = asset = contract
        elif value_free and sel == TRC20_TRANSFER_FROM and len(args) == 96:
            _word_address(args[:32])
            token_method, token_contract, asset = "transferFrom", contract, contract
            destination, amount = _word_address(args[32:64]), int.from_bytes(args[64:], "big")
    elif ctype == 30:  # CreateSmartContract: new_contract (2) carries the TRX sent to the new contract
        call_value = Fields(p.get_bytes(2)).get_int(5)
        call_token_value, call_token_id = p.get_int(3), p.get_int(4)
        amount, asset = call_value, TRX
    elif ctype == 11:  # FreezeBalanceContract (v1)
        amount, asset, resource = p.get_int(2), TRX, RESOURCE_NAMES.get(p.get_int(10), "UNKNOWN")
        if p.get_bytes(15):
            destination = _addr(p.get_bytes(15), "receiver_address")
    elif ctype == 12:  # UnfreezeBalanceContract (v1)
        resource = RESOURCE_NAMES.get(p.get_int(10), "UNKNOWN")
        if p.get_bytes(15):
            destination = _addr(p.get_bytes(15), "receiver_address")
    elif ctype in (54, 55):  # Freeze/UnfreezeBalanceV2
        amount, asset, resource = p.get_int(2), TRX, RESOURCE_NAMES.get(p.get_int(3), "UNKNOWN")
    elif ctype in (57, 58):  # Delegate/UnDelegateResource
        resource, amount, asset = RESOURCE_NAMES.get(p.get_int(2), "UNKNOWN"), p.get_int(3), TRX
        destination = _addr(p.get_bytes(4), "receiver_address")
        lock = ctype == 57 and p.get_int(5) != 0
    elif ctype == 4:  # VoteWitnessContract
        votes = tuple(
            (_addr(Fields(v).get_bytes(1), "vote_address"), Fields(v).get_int(2)) for v in p.get_all_bytes(2)
        )
    elif ctype == 46:  # AccountPermissionUpdateContract: owner (2), witness (3), actives (4)
        # All occurrences: protobuf merges a repeated singular message, concatenating its keys.
        perms = [*p.get_all_bytes(2), *p.get_all_bytes(3), *p.get_all_bytes(4)]
        keys = [k for perm in perms for k in Fields(perm).get_all_bytes(7)]
        permission_keys = tuple(_addr(Fields(k).get_bytes(1), "key address") for k in keys)
    if (amount is not None and amount < 0) or call_token_value < 0:
        raise MalformedTransaction("negative amount")
    # A negative fee_limit (the node refuses it) would lower the TRX the policy counts.
    if top.get_int(18) < 0:
        raise MalformedTransaction("negative fee_limit")

    return ParsedTransaction(
        raw=raw,
        txid=txid_digest(raw),
        contract_type=ctype,
        contract_type_name=name,
        type_url=type_url,
        owner=owner,
        permission_id=c.get_int(5),
        destination=destination,
        amount=amount,
        asset=asset,
        token_method=token_method,
        token_contract=token_contract,
        contract_address=contract,
        call_value=call_value,
        call_data=call_data,
        resource=resource,
        memo=top.get_bytes(10),
        expiration=top.get_int(8),
        timestamp=top.get_int(14),
        fee_limit=top.get_int(18),
        ref_block_bytes=top.get_bytes(1),
        ref_block_hash=top.get_bytes(4),
        votes=votes,
        call_token_value=call_token_value,
        call_token_id=call_token_id,
        lock=lock,
        permission_keys=permission_keys,
    )


def top_level_fields(raw: bytes) -> list[bytes]:
    """The raw bytes of each top-level field, in order (the units a Ledger chunk is made of)."""
    try:
        return split_fields(raw)
    except WireError as exc:
        raise MalformedTransaction(str(exc)) from None
