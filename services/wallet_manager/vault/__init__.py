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
from .tron_tx import ParsedTransaction, parse_transaction
from .tronlink import Challenge, ProofResult, new_challenge, verify_proof

__all__ = [
    "AssetLimit",
    "Challenge",
    "Decision",
    "InvalidAddress",
    "InvalidMnemonic",
    "KdfParams",
    "Kek",
    "Keyring",
    "MalformedTransaction",
    "ParsedTransaction",
    "ProofResult",
    "SealedSecret",
    "SecretUnavailable",
    "SignatureMismatch",
    "UnknownKek",
    "VaultError",
    "WalletPolicy",
    "check",
    "new_challenge",
    "parse_transaction",
    "recover_address",
    "sign_digest",
    "verify_proof",
]
