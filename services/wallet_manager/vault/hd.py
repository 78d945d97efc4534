"""BIP39 seeds and BIP44 TRON derivation (m/44'/195'/account'/0/index), account xpubs, watch-only addresses.

Watch-only derivation uses only the account xpub: change (0) and index are non-hardened, so public CKD
gives the same addresses as the private path. Never put a child private key next to its account xpub
online: together they reveal the account private key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bip_utils import (
    Bip32ChainCode,
    Bip32Depth,
    Bip32FingerPrint,
    Bip32KeyData,
    Bip32KeyIndex,
    Bip32Secp256k1,
    Bip39Languages,
    Bip39MnemonicGenerator,
    Bip39MnemonicValidator,
    Bip39SeedGenerator,
    Bip39WordsNum,
    Hash160,
)

from services.common.tron.address import pubkey_to_address

from .errors import InvalidMnemonic, VaultError

TRON_COIN_TYPE = 195
_HARDENED = 0x80000000
_MAX_INDEX = 0x7FFFFFFF


def tron_path(account: int, index: int) -> str:
    """The BIP44 TRON path string for an account and external-chain index."""
    _check_index(account)
    _check_index(index)
    return f"m/44'/{TRON_COIN_TYPE}'/{account}'/0/{index}"


def path_indices(account: int, index: int) -> list[int]:
    """The same path as uint32 indices (hardened bit set), as Ledger and Trezor take it."""
    _check_index(account)
    _check_index(index)
    return [44 | _HARDENED, TRON_COIN_TYPE | _HARDENED, account | _HARDENED, 0, index]


def _check_index(i: int) -> None:
    if not 0 <= i <= _MAX_INDEX:
        raise VaultError("derivation index out of range")


def generate_mnemonic(words: int = 24) -> str:
    """A fresh BIP39 English mnemonic (24 words by default, 256 bits of entropy)."""
    num = {12: Bip39WordsNum.WORDS_NUM_12, 24: Bip39WordsNum.WORDS_NUM_24}.get(words)
    if num is None:
        raise VaultError("mnemonic must be 12 or 24 words")
    return str(Bip39MnemonicGenerator(Bip39Languages.ENGLISH).FromWordsNumber(num))


def validate_mnemonic(mnemonic: str) -> str:
    """Normalise (lower case, single spaces) and validate words and checksum; raise InvalidMnemonic."""
    norm = " ".join(mnemonic.lower().split())
    try:
        Bip39MnemonicValidator(Bip39Languages.ENGLISH).Validate(norm)
    except Exception:  # bip_utils raises several types; never echo the words
        raise InvalidMnemonic("mnemonic failed BIP39 validation") from None
    return norm


def seed_from_mnemonic(mnemonic: str, passphrase: str = "") -> bytes:
    """BIP39 64-byte seed (PBKDF2-HMAC-SHA512, 2048 rounds) of a validated mnemonic."""
    return bytes(Bip39SeedGenerator(validate_mnemonic(mnemonic), Bip39Languages.ENGLISH).Generate(passphrase))


@dataclass(frozen=True)
class DerivedKey:
    """A derived TRON key. repr never shows the private key."""

    account: int
    index: int
    address: str
    public_key: bytes = field(repr=False)  # 65-byte uncompressed
    private_key: bytes = field(repr=False)

    @property
    def path(self) -> str:
        return tron_path(self.account, self.index)


def _account_node(seed: bytes, account: int) -> Bip32Secp256k1:
    _check_index(account)
    if len(seed) < 16:
        raise VaultError("seed too short")
    master = Bip32Secp256k1.FromSeed(seed)
    return master.DerivePath(f"m/44'/{TRON_COIN_TYPE}'/{account}'")


def derive_key(seed: bytes, account: int, index: int) -> DerivedKey:
    """Private key, public key and address at m/44'/195'/account'/0/index."""
    _check_index(index)
    node = _account_node(seed, account).ChildKey(0).ChildKey(index)
    pub = node.PublicKey().RawUncompressed().ToBytes()
    return DerivedKey(account, index, pubkey_to_address(pub), pub, node.PrivateKey().Raw().ToBytes())


def hash160_fingerprint(compressed_pubkey: bytes) -> bytes:
    """BIP32 key fingerprint: first 4 bytes of RIPEMD160(SHA256(key))."""
    return bytes(Hash160.QuickDigest(compressed_pubkey)[:4])


def compress_pubkey(pub65: bytes) -> bytes:
    return bytes([2 + (pub65[64] & 1)]) + pub65[1:33]


def account_xpub(seed: bytes, account: int) -> str:
    """The account-level extended public key (xpub, version 0488b21e) of m/44'/195'/account'."""
    return str(_account_node(seed, account).PublicKey().ToExtended())


def xpub_from_parts(
    chain_code: bytes, public_key: bytes, parent_fingerprint: bytes, account: int, depth: int = 3
) -> str:
    """Assemble an account xpub from a device's chain code and key (Ledger INS 02 with P2=1)."""
    data = Bip32KeyData(
        chain_code=Bip32ChainCode(chain_code),
        depth=Bip32Depth(depth),
        index=Bip32KeyIndex(account | _HARDENED),
        parent_fprint=Bip32FingerPrint(parent_fingerprint),
    )
    return str(Bip32Secp256k1.FromPublicKey(public_key, key_data=data).PublicKey().ToExtended())


class WatchOnlyAccount:
    """Derives deposit addresses m/.../0/index from an account xpub; holds no private key."""

    def __init__(self, xpub: str) -> None:
        try:
            node = Bip32Secp256k1.FromExtendedKey(xpub)
        except Exception:
            raise VaultError("invalid extended public key") from None
        if not node.IsPublicOnly():
            # An xprv would put a private key into a watch-only wallet; refuse it outright.
            raise VaultError("watch-only accounts take an xpub, not a private extended key")
        self._external = node.ChildKey(0)
        self.xpub = xpub

    def address(self, index: int) -> str:
        _check_index(index)
        return pubkey_to_address(self._external.ChildKey(index).PublicKey().RawUncompressed().ToBytes())

    def public_key(self, index: int) -> bytes:
        _check_index(index)
        return bytes(self._external.ChildKey(index).PublicKey().RawUncompressed().ToBytes())
