"""Vault exceptions. Messages never carry key material, plaintext or ciphertext bytes."""

from __future__ import annotations


class VaultError(Exception):
    """Base of every vault error; `reason` is a stable machine-readable code."""

    reason = "VAULT_ERROR"


class SecretUnavailable(VaultError):
    """A sealed secret could not be opened: tampered, swapped to another wallet, or wrong KEK."""

    reason = "SECRET_UNAVAILABLE"

    def __init__(self) -> None:
        # One fixed message whatever failed, so an error reveals nothing about the record.
        super().__init__("sealed secret failed authentication")


class UnknownKek(VaultError):
    """The record was wrapped under a KEK that this keyring does not hold (retired or not configured)."""

    reason = "UNKNOWN_KEK"

    def __init__(self, kek_id: str) -> None:
        super().__init__(f"key-encryption key {kek_id!r} is not available")
        self.kek_id = kek_id


class InvalidMnemonic(VaultError):
    """A BIP39 mnemonic failed word-list or checksum validation."""

    reason = "INVALID_MNEMONIC"


class InvalidAddress(VaultError):
    """A TRON address failed base58check, length or 0x41-prefix validation."""

    reason = "INVALID_ADDRESS"


class MalformedTransaction(VaultError):
    """raw_data is not a well-formed single-contract Transaction.raw."""

    reason = "MALFORMED_TRANSACTION"


class SignatureMismatch(VaultError):
    """A signature does not recover to the expected address over our own digest."""

    reason = "SIGNATURE_MISMATCH"
