"""Wallet-manager vault core: envelope-encrypted keys, HD derivation, transaction parsing, signing policy,
personal messages, and Ledger/Trezor clients. A library for the service (keys.py, signing.py, wallets.py,
devices.py compose it); no gRPC, no MongoDB here. Addresses are services.common.tron.address (not
re-exported here)."""

from .ecdsa import recover_address, sign_digest
from .errors import (
    InvalidAddress,
    InvalidMnemonic,
    MalformedTransaction,
    SecretUnavailable,
    SignatureMismatch,
    UnknownKek,
    VaultError,
)
from .keystore import KdfParams, Kek, Keyring, SealedSecret
from .policy import AssetLimit, Decision, WalletPolicy, check
from .tron_tx import ParsedTransaction, Spend, parse_transaction
from .tronlink import Challenge, ProofResult, new_challenge, verify_proof

__all__ = [
    "Challenge",
    "ProofResult",
    "new_challenge",
    "verify_proof",
    "AssetLimit",
    "Decision",
    "InvalidAddress",
    "InvalidMnemonic",
    "KdfParams",
    "Kek",
    "Keyring",
    "MalformedTransaction",
    "ParsedTransaction",
    "SealedSecret",
    "SecretUnavailable",
    "SignatureMismatch",
    "Spend",
    "UnknownKek",
    "VaultError",
    "WalletPolicy",
    "check",
    "parse_transaction",
    "recover_address",
    "sign_digest",
]
