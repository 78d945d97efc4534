"""Envelope encryption of wallet secrets (private keys, the master seed).

Layout of one sealed secret (a MongoDB-ready dict, see SealedSecret.to_doc):
- a fresh random 256-bit data key (DEK) per secret; the secret is AES-256-GCM encrypted under it with
  AAD = (format, "secret", purpose, wallet_id), so a ciphertext copied onto another wallet fails;
- the DEK is AES-256-GCM wrapped under a key-encryption key (KEK) with AAD = (format, "dek", wallet_id,
  kek_id), so a wrapped DEK cannot be moved between wallets or relabelled to another KEK;
- the KEK is derived from WALLET_ENCRYPTION_KEY with scrypt and a stored random salt. scrypt, not HKDF:
  the variable is operator-chosen text that may be a passphrase, and a leaked database must not allow a
  cheap offline guess. The cost is paid once per process (KEKs are cached in the Keyring), never per sign.
  Every record stores the scrypt parameters of its KEK (`kdf`), checked on read against the KEK's own and
  against MIN_SCRYPT_N: stored parameters are database input, and weaker ones would make that guess
  cheap. Records written before parameters were stored (no `kdf`) were made with the legacy N = 2**15;
  they still open (their KEK must be at least LEGACY_SCRYPT_N) and key rotation re-wraps them.
- kek_id is a fingerprint of the KEK (HMAC under the KEK), stored on every record; it lets a keyring hold
  the old and the new KEK during rotation, re-wrap DEKs (ciphertexts untouched), then retire the old one.
- each KEK also yields an HMAC key (HKDF-SHA256 of the KEK, its own label) for the integrity tags of what
  the service stores in the clear but must not be changed behind its back (Keyring.tag / check_tag).

Invariants: plaintext never appears in a repr, log or exception; `unsealed()` hands out a bytearray that
is overwritten when the with-block ends (best effort in Python).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import SecretUnavailable, UnknownKek, VaultError

FORMAT = "tronpay-vault-v1"
ALG = "AES-256-GCM+AES-256-GCM-WRAP"
KDF = "scrypt"
_NONCE = 12
_KEY = 32
# scrypt cost: new KEKs use at least MIN_SCRYPT_N (128 MiB with r = 8); LEGACY_SCRYPT_N is the cost of
# records sealed before that, accepted for opening only until rotation re-wraps them.
MIN_SCRYPT_N = 2**17
LEGACY_SCRYPT_N = 2**15
MIN_SCRYPT_R = 8
_MAX_SCRYPT_N = 2**22  # bounds the memory a stored record can make us spend (4 GiB at r = 8 is too much)


def _aad(*parts: str | bytes) -> bytes:
    # Length-prefixed so ("ab","c") and ("a","bc") can never produce the same AAD.
    out = bytearray()
    for p in (FORMAT, *parts):
        b = p.encode() if isinstance(p, str) else p
        out += struct.pack(">I", len(b)) + b
    return bytes(out)


@dataclass(frozen=True)
class KdfParams:
    """scrypt parameters stored next to the records (salt is not secret)."""

    salt: bytes
    n: int = MIN_SCRYPT_N
    r: int = 8
    p: int = 1

    @classmethod
    def generate(cls, n: int = MIN_SCRYPT_N) -> KdfParams:
        return cls(salt=os.urandom(16), n=n)

    def to_doc(self) -> dict[str, Any]:
        return {"kdf": KDF, "salt": self.salt, "n": self.n, "r": self.r, "p": self.p}

    @classmethod
    def from_doc(cls, doc: dict[str, Any], min_n: int = MIN_SCRYPT_N) -> KdfParams:
        """Stored parameters; VaultError when weaker than min_n / MIN_SCRYPT_R, or absurdly costly."""
        if doc.get("kdf") != KDF:
            raise VaultError("unsupported KDF")
        try:
            params = cls(salt=bytes(doc["salt"]), n=int(doc["n"]), r=int(doc["r"]), p=int(doc["p"]))
        except (KeyError, TypeError, ValueError):
            raise VaultError("incomplete KDF parameters") from None
        weak = params.n < min_n or params.r < MIN_SCRYPT_R or params.p < 1 or len(params.salt) < 16
        if weak or params.n > _MAX_SCRYPT_N or params.n & (params.n - 1):
            raise VaultError(
                f"KDF parameters refused: scrypt needs N a power of two from {min_n} to {_MAX_SCRYPT_N}, "
                f"r >= {MIN_SCRYPT_R}, p >= 1 and a 16-byte salt"
            )
        return params


class Kek:
    """A key-encryption key derived from WALLET_ENCRYPTION_KEY. Its repr shows the id only."""

    __slots__ = ("_aead", "_tag_key", "kek_id", "params")

    def __init__(self, key: bytes, params: KdfParams) -> None:
        if len(key) != _KEY:
            raise ValueError("KEK must be 32 bytes")
        self.params = params
        self.kek_id = "kek-" + hmac.new(key, b"tronpay kek id", hashlib.sha256).hexdigest()[:16]
        self._aead = AESGCM(key)
        self._tag_key = HKDF(hashes.SHA256(), _KEY, salt=None, info=_aad("integrity")).derive(key)

    @classmethod
    def derive(cls, secret: str | bytes, params: KdfParams) -> Kek:
        """scrypt(secret, salt) -> 32-byte KEK. Raises VaultError on an empty secret."""
        material = secret.encode() if isinstance(secret, str) else bytes(secret)
        if not material:
            raise VaultError("WALLET_ENCRYPTION_KEY is empty")
        key = hashlib.scrypt(
            material,
            salt=params.salt,
            n=params.n,
            r=params.r,
            p=params.p,
            maxmem=256 * 1024 * 1024,
            dklen=_KEY,
        )
        return cls(key, params)

    def wrap(self, wallet_id: str, dek: bytearray) -> tuple[bytes, bytes]:
        """(nonce, wrapped DEK) bound to wallet_id and this KEK's id."""
        nonce = os.urandom(_NONCE)
        return nonce, self._aead.encrypt(nonce, bytes(dek), _aad("dek", wallet_id, self.kek_id))

    def unwrap(self, wallet_id: str, nonce: bytes, wrapped: bytes) -> bytearray:
        try:
            return bytearray(self._aead.decrypt(nonce, wrapped, _aad("dek", wallet_id, self.kek_id)))
        except (InvalidTag, ValueError):
            raise SecretUnavailable() from None

    def tag(self, *parts: str | bytes) -> bytes:
        """HMAC-SHA256 over the length-prefixed parts under this KEK's integrity key."""
        return hmac.new(self._tag_key, _aad("tag", *parts), hashlib.sha256).digest()

    def __repr__(self) -> str:
        return f"Kek({self.kek_id})"


@dataclass(frozen=True)
class SealedSecret:
    """One encrypted secret as stored. Nothing in it is secret; it is useless without the KEK."""

    wallet_id: str
    purpose: str
    kek_id: str
    wrap_nonce: bytes = field(repr=False)
    wrapped_key: bytes = field(repr=False)
    nonce: bytes = field(repr=False)
    ciphertext: bytes = field(repr=False)
    # The KEK's scrypt parameters; None on a record sealed before they were stored (LEGACY_SCRYPT_N).
    kdf: KdfParams | None = field(default=None, repr=False)
    alg: str = ALG
    format: str = FORMAT

    def to_doc(self) -> dict[str, Any]:
        """A dict of str/bytes (bytes become BSON binary) and the KDF parameters, for MongoDB."""
        doc: dict[str, Any] = {
            "format": self.format,
            "alg": self.alg,
            "wallet_id": self.wallet_id,
            "purpose": self.purpose,
            "kek_id": self.kek_id,
            "wrap_nonce": self.wrap_nonce,
            "wrapped_key": self.wrapped_key,
            "nonce": self.nonce,
            "ciphertext": self.ciphertext,
        }
        if self.kdf is not None:
            doc["kdf"] = self.kdf.to_doc()
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> SealedSecret:
        """The record as stored; VaultError when malformed or when it claims KDF parameters below the
        minimum."""
        if doc.get("format") != FORMAT or doc.get("alg") != ALG:
            raise VaultError("unsupported sealed-secret format")
        kdf = KdfParams.from_doc(doc["kdf"]) if doc.get("kdf") is not None else None
        try:
            return cls(
                wallet_id=str(doc["wallet_id"]),
                purpose=str(doc["purpose"]),
                kek_id=str(doc["kek_id"]),
                wrap_nonce=bytes(doc["wrap_nonce"]),
                wrapped_key=bytes(doc["wrapped_key"]),
                nonce=bytes(doc["nonce"]),
                ciphertext=bytes(doc["ciphertext"]),
                kdf=kdf,
            )
        except (KeyError, TypeError):
            raise VaultError("incomplete sealed-secret record") from None


class Keyring:
    """The active KEK (used to seal and re-wrap) plus KEKs still accepted for opening during rotation."""

    def __init__(self, active: Kek, *accepted: Kek) -> None:
        self._active = active
        self._keks: dict[str, Kek] = {k.kek_id: k for k in (*accepted, active)}

    @property
    def active_id(self) -> str:
        return self._active.kek_id

    @property
    def kek_ids(self) -> tuple[str, ...]:
        return tuple(self._keks)

    def accept(self, kek: Kek) -> None:
        """Accept records wrapped under another KEK (the old one while rotating)."""
        self._keks[kek.kek_id] = kek

    def retire(self, kek_id: str) -> None:
        """Stop accepting a KEK; records still wrapped under it then raise UnknownKek."""
        if kek_id == self._active.kek_id:
            raise VaultError("cannot retire the active KEK")
        self._keks.pop(kek_id, None)

    def seal(self, wallet_id: str, secret: bytes | bytearray, purpose: str = "private_key") -> SealedSecret:
        """Encrypt a secret for one wallet under a fresh data key wrapped by the active KEK."""
        if not wallet_id:
            raise VaultError("wallet_id is required")
        dek = bytearray(AESGCM.generate_key(bit_length=256))
        try:
            nonce = os.urandom(_NONCE)
            ciphertext = AESGCM(bytes(dek)).encrypt(nonce, bytes(secret), _aad("secret", purpose, wallet_id))
            wrap_nonce, wrapped = self._active.wrap(wallet_id, dek)
        finally:
            dek[:] = bytes(len(dek))
        return SealedSecret(
            wallet_id, purpose, self.active_id, wrap_nonce, wrapped, nonce, ciphertext, self._active.params
        )

    def _unwrap(self, wallet_id: str, rec: SealedSecret) -> bytearray:
        kek = self._keks.get(rec.kek_id)
        if kek is None:
            raise UnknownKek(rec.kek_id)
        # The record's stated parameters must be its KEK's; a record without them is a legacy one.
        stated_ok = kek.params.n >= LEGACY_SCRYPT_N if rec.kdf is None else rec.kdf == kek.params
        if not stated_ok:
            raise SecretUnavailable()
        return kek.unwrap(wallet_id, rec.wrap_nonce, rec.wrapped_key)

    def open(
        self, wallet_id: str, rec: SealedSecret | dict[str, Any], purpose: str | None = None
    ) -> bytearray:
        """Decrypt a sealed secret for wallet_id. The caller must wipe the result; prefer unsealed()."""
        if isinstance(rec, dict):
            rec = SealedSecret.from_doc(rec)
        # wallet_id and purpose come from the caller's context, never from the record, so a record
        # copied onto another wallet is authenticated against the wrong AAD and fails.
        want_purpose = rec.purpose if purpose is None else purpose
        dek = self._unwrap(wallet_id, rec)
        try:
            aad = _aad("secret", want_purpose, wallet_id)
            return bytearray(AESGCM(bytes(dek)).decrypt(rec.nonce, rec.ciphertext, aad))
        except (InvalidTag, ValueError):
            raise SecretUnavailable() from None
        finally:
            dek[:] = bytes(len(dek))

    @contextmanager
    def unsealed(
        self, wallet_id: str, rec: SealedSecret | dict[str, Any], purpose: str | None = None
    ) -> Iterator[bytearray]:
        """Yield the plaintext for the duration of a with-block, then overwrite it."""
        secret = self.open(wallet_id, rec, purpose)
        try:
            yield secret
        finally:
            secret[:] = bytes(len(secret))

    def needs_rewrap(self, rec: SealedSecret | dict[str, Any]) -> bool:
        kek_id = rec["kek_id"] if isinstance(rec, dict) else rec.kek_id
        return kek_id != self.active_id

    def rewrap(self, wallet_id: str, rec: SealedSecret | dict[str, Any]) -> SealedSecret:
        """Re-wrap the data key under the active KEK; the secret's ciphertext stays byte-identical."""
        if isinstance(rec, dict):
            rec = SealedSecret.from_doc(rec)
        dek = self._unwrap(wallet_id, rec)
        try:
            # Prove the DEK still opens the secret before the old wrapping is replaced.
            AESGCM(bytes(dek)).decrypt(rec.nonce, rec.ciphertext, _aad("secret", rec.purpose, wallet_id))
            wrap_nonce, wrapped = self._active.wrap(wallet_id, dek)
        except (InvalidTag, ValueError):
            raise SecretUnavailable() from None
        finally:
            dek[:] = bytes(len(dek))
        return SealedSecret(
            wallet_id,
            rec.purpose,
            self.active_id,
            wrap_nonce,
            wrapped,
            rec.nonce,
            rec.ciphertext,
            self._active.params,
        )

    # -- integrity tags ------------------------------------------------------------------------------

    def tag(self, *parts: str | bytes) -> dict[str, Any]:
        """An integrity tag over parts under the active KEK, as stored: {"kek_id", "tag"}."""
        return {"kek_id": self.active_id, "tag": self._active.tag(*parts)}

    def check_tag(self, stored: Any, *parts: str | bytes) -> bool:
        """Whether `stored` (a tag() result read back) is a valid tag over parts under a KEK of this ring."""
        if not isinstance(stored, dict):
            return False
        kek = self._keks.get(str(stored.get("kek_id", "")))
        tag = stored.get("tag")
        return kek is not None and isinstance(tag, bytes) and hmac.compare_digest(kek.tag(*parts), tag)

    def __repr__(self) -> str:
        return f"Keyring(active={self.active_id}, accepted={list(self._keks)})"
