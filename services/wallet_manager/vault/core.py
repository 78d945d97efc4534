"""The vault facade the wallet-manager servicer calls. Pure: it takes and returns storable records and
never touches MongoDB, the network or logs; the servicer persists records, the daily spend and the
append-only signing log.

Key layout: the cluster's BIP39 master seed is sealed under MASTER_SEED_ID. Each HD wallet's child key
(m/44'/195'/account'/0/index) is derived once at creation and sealed under the wallet's own id, so a
signature costs one DEK unwrap + one AES-GCM decrypt (~10 µs) instead of a BIP32 derivation (~2 ms).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import coincurve

from services.common.tron.address import private_key_to_address, pubkey_to_address

from . import hd
from .errors import VaultError
from .hardware import HardwareSigner
from .keystore import KdfParams, Kek, Keyring, SealedSecret
from .messages import sign_message_v2
from .policy import Decision, WalletPolicy, check
from .signer import sign_transaction
from .tron_tx import ParsedTransaction, parse_transaction

MASTER_SEED_ID = "__master_seed__"
PURPOSE_SEED = "master_seed"
PURPOSE_KEY = "private_key"

Doc = Mapping[str, Any]


@dataclass(frozen=True)
class KeyMaterial:
    """A new wallet key: public facts plus the sealed record to store. Holds no plaintext."""

    address: str
    public_key: bytes = field(repr=False)
    sealed: dict[str, Any] = field(repr=False)
    account: int | None = None
    index: int | None = None


@dataclass(frozen=True)
class SignResult:
    tx: ParsedTransaction
    decision: Decision
    signature: bytes | None  # None when the policy refused

    @property
    def txid_hex(self) -> str:
        return self.tx.txid_hex


class Vault:
    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    @classmethod
    def from_secrets(
        cls, current: str, previous: Sequence[str] = (), kdf_doc: Doc | None = None
    ) -> tuple[Vault, dict[str, Any]]:
        """Keyring from WALLET_ENCRYPTION_KEY (+ keys still accepted during a rotation).

        kdf_doc is the stored scrypt salt/params; pass None on the very first start and store the returned
        doc. All KEKs share it (the salt is not secret; different keys still give different KEKs).
        """
        params = KdfParams.from_doc(dict(kdf_doc)) if kdf_doc is not None else KdfParams.generate()
        keks = [Kek.derive(k, params) for k in (current, *previous) if k]
        if not keks:
            raise VaultError("WALLET_ENCRYPTION_KEY is empty")
        return cls(Keyring(keks[0], *keks[1:])), params.to_doc()

    # ------------------------------------------------------------------ master seed / HD
    def new_master_seed(self, mnemonic: str | None = None, passphrase: str = "") -> dict[str, Any]:
        """Seal a BIP39 seed (generated, 24 words, when no mnemonic is given). Returns the record to store."""
        words = hd.generate_mnemonic() if mnemonic is None else mnemonic
        seed = bytearray(hd.seed_from_mnemonic(words, passphrase))
        try:
            return self.keyring.seal(MASTER_SEED_ID, seed, PURPOSE_SEED).to_doc()
        finally:
            seed[:] = bytes(len(seed))

    def account_xpub(self, sealed_seed: Doc, account: int) -> str:
        with self.keyring.unsealed(MASTER_SEED_ID, dict(sealed_seed), PURPOSE_SEED) as seed:
            return hd.account_xpub(bytes(seed), account)

    def derive_hd_wallet(self, sealed_seed: Doc, wallet_id: str, account: int, index: int = 0) -> KeyMaterial:
        """Derive m/44'/195'/account'/0/index and seal its private key under wallet_id."""
        with self.keyring.unsealed(MASTER_SEED_ID, dict(sealed_seed), PURPOSE_SEED) as seed:
            key = hd.derive_key(bytes(seed), account, index)
        sealed = self.keyring.seal(wallet_id, key.private_key, PURPOSE_KEY).to_doc()
        return KeyMaterial(key.address, key.public_key, sealed, account, index)

    def derive_address(self, sealed_seed: Doc, account: int, index: int) -> str:
        """Deposit address m/44'/195'/account'/0/index (no key is sealed or returned)."""
        with self.keyring.unsealed(MASTER_SEED_ID, dict(sealed_seed), PURPOSE_SEED) as seed:
            return hd.derive_key(bytes(seed), account, index).address

    def import_private_key(self, wallet_id: str, private_key: bytes | str) -> KeyMaterial:
        """Seal an imported 32-byte key (raw or hex). Errors never echo the input."""
        try:
            raw = (
                bytes.fromhex(private_key.removeprefix("0x")) if isinstance(private_key, str) else private_key
            )
            pub = coincurve.PrivateKey(raw).public_key.format(compressed=False)
        except Exception:
            raise VaultError(
                "private key must be 32 bytes (64 hex characters) in the secp256k1 range"
            ) from None
        if len(raw) != 32:
            raise VaultError("private key must be 32 bytes (64 hex characters) in the secp256k1 range")
        sealed = self.keyring.seal(wallet_id, raw, PURPOSE_KEY).to_doc()
        return KeyMaterial(pubkey_to_address(pub), pub, sealed)

    # ------------------------------------------------------------------ signing
    def sign_transaction(
        self,
        *,
        wallet_id: str,
        address: str,
        raw: bytes,
        policy: WalletPolicy,
        sealed_key: Doc | None = None,
        device: HardwareSigner | None = None,
        device_path: Sequence[int] | None = None,
        watch_only: bool = False,
        spent_today: Mapping[str, int] | None = None,
        now_ms: int | None = None,
    ) -> SignResult:
        """Parse raw_data (MalformedTransaction on bad bytes), check the policy, then sign with the sealed
        key or the device. A refusal returns signature=None with decision.reason set."""
        tx = parse_transaction(raw)
        no_signer = sealed_key is None and device is None
        decision = check(
            tx,
            policy=policy,
            wallet_address=address,
            watch_only=watch_only or no_signer,
            spent_today=spent_today,
            now_ms=now_ms,
        )
        if not decision:
            return SignResult(tx, decision, None)
        if device is not None:
            if device_path is None:
                raise VaultError("a device path is required to sign on a hardware wallet")
            sig = device.sign_transaction(device_path, tx.raw, address)
        else:
            assert sealed_key is not None
            rec = SealedSecret.from_doc(dict(sealed_key))
            sig = sign_transaction(self.keyring, wallet_id, rec, tx.txid, address)
        return SignResult(tx, decision, sig)

    def sign_message(self, *, wallet_id: str, address: str, message: str | bytes, sealed_key: Doc) -> bytes:
        """TIP-191 v2 (signMessageV2) signature, v in {27, 28}, checked against the wallet address."""
        with self.keyring.unsealed(wallet_id, dict(sealed_key), PURPOSE_KEY) as key:
            if private_key_to_address(bytes(key)) != address:
                raise VaultError("the sealed key does not belong to this wallet")
            return sign_message_v2(bytes(key), message)

    # ------------------------------------------------------------------ rotation
    def rewrap(self, wallet_id: str, doc: Doc) -> dict[str, Any] | None:
        """The re-wrapped record if doc is on an old KEK, else None (nothing to write)."""
        if not self.keyring.needs_rewrap(dict(doc)):
            return None
        return self.keyring.rewrap(wallet_id, dict(doc)).to_doc()
