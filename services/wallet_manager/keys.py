"""Key custody of wallet-manager: the keyring (KEKs from WALLET_ENCRYPTION_KEY[_PREVIOUS]), the master seed,
sealing new keys and signing with a sealed key decrypted for one call.

What stays in memory across calls, and why:
- the KEKs (scrypt-derived once per process: scrypt per call would cost ~350 ms a signature);
- sealed records (ciphertext + wrapped data key) of wallet keys, keyed by secret id: they are not
  secret (useless without the KEK) and never change except by rotation, which keeps the old KEK
  accepted until every record is re-wrapped; a record that no longer opens is re-read once.
Plaintext keys, data keys and the seed exist only inside one call, in bytearrays wiped afterwards.

Secret ids double as the envelope's associated data: "<wallet_id>/<index>" for a wallet key, so a
ciphertext moved to another wallet or address fails authentication; "master-seed" / "master-mnemonic".

scrypt parameters: every replica seals under the parameters stored once in the `vault` document KDF_DOC
(N >= vault.keystore.MIN_SCRYPT_N, checked whenever it is read: the database must not be able to weaken
them). A database from before that minimum also holds LEGACY_KDF_DOC (N = 2**15): KEKs derived with it
still open the records sealed then, and `rotate-key` re-wraps those under KDF_DOC's parameters.

Without WALLET_ENCRYPTION_KEY the public devnet key is used, which settings allow only on a loopback
devnet; before using it the vault also asks tron-client (`network_info`) that its chain is TRON_NETWORK=
devnet and none of the public networks' (a chain id is the last 4 bytes of the genesis block id; the
devnet's genesis is made at its first start, so only the public ones are known in advance). Otherwise
the vault stays VAULT_UNAVAILABLE: nothing is sealed or signed under a public key there.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from services.common.errors import FailedPrecondition
from services.common.logging import get_logger
from services.common.settings import DEFAULT_CHAIN_IDS, TronNetwork
from services.wallet_manager.settings import DEVNET_FALLBACK_KEY, WalletManagerSettings
from services.wallet_manager.store import Store
from services.wallet_manager.vault import hd
from services.wallet_manager.vault.ecdsa import require_signer, sign_digest
from services.wallet_manager.vault.errors import SecretUnavailable, UnknownKek, VaultError
from services.wallet_manager.vault.keystore import LEGACY_SCRYPT_N, KdfParams, Kek, Keyring, SealedSecret

log = get_logger("services.wallet_manager.keys")

SEED_ID = "master-seed"
MNEMONIC_ID = "master-mnemonic"
KDF_DOC = "kdf-v2"
LEGACY_KDF_DOC = "kdf"
_SEALED_CACHE_MAX = 100_000

T = TypeVar("T")
# (network name, chain id) as tron-client reports them (Chain.network_info).
NetworkInfo = Callable[[], Awaitable[tuple[str, int]]]
PUBLIC_CHAIN_IDS = frozenset(DEFAULT_CHAIN_IDS.values())


def secret_id(wallet_id: str, index: int) -> str:
    return f"{wallet_id}/{index}"


def keys_from_settings(settings: WalletManagerSettings) -> tuple[str, str]:
    """(active, previous) encryption keys; the devnet fallback when none is configured (settings allow
    that on a loopback devnet only)."""
    active = settings.WALLET_ENCRYPTION_KEY.get_secret_value()
    previous = settings.WALLET_ENCRYPTION_KEY_PREVIOUS.get_secret_value()
    return (DEVNET_FALLBACK_KEY if settings.uses_devnet_fallback_key else active), previous


def vault_unavailable(what: str) -> FailedPrecondition:
    return FailedPrecondition(f"key storage is unavailable: {what}", reason="VAULT_UNAVAILABLE")


async def confirm_devnet(network_info: NetworkInfo) -> None:
    """VAULT_UNAVAILABLE unless tron-client's chain is a devnet and no public network's."""
    network, chain_id = await network_info()
    if network != TronNetwork.DEVNET or chain_id in PUBLIC_CHAIN_IDS:
        raise vault_unavailable(
            f"WALLET_ENCRYPTION_KEY is required: tron-client's chain ({network}, chain id {chain_id:#010x}) "
            "is not a local devnet"
        )


async def load_keyring(
    settings: WalletManagerSettings, store: Store, network_info: NetworkInfo | None
) -> Keyring:
    """Derive the KEKs with the stored KDF parameters (created by the first process ever), plus the legacy
    ones while a database from before MIN_SCRYPT_N holds them. `network_info` guards the public devnet
    key; operator commands pass None (they run beside the service, under the same settings checks)."""
    active, previous = keys_from_settings(settings)
    if settings.uses_devnet_fallback_key and network_info is not None:
        await confirm_devnet(network_info)
    doc = await store.get_or_create_vault_doc(KDF_DOC, KdfParams.generate().to_doc())
    legacy_doc = await store.get_vault_doc(LEGACY_KDF_DOC)
    try:
        param_sets = [KdfParams.from_doc(doc)]
        if legacy_doc is not None:
            param_sets.append(KdfParams.from_doc(legacy_doc, min_n=LEGACY_SCRYPT_N))
    except VaultError as exc:
        raise vault_unavailable(f"the stored KDF parameters are refused: {exc}") from None
    # scrypt is deliberately slow: keep it off the event loop. The first KEK (active key, current
    # parameters) seals; the others only open.
    keks = [
        await asyncio.to_thread(Kek.derive, k, params)
        for params in param_sets
        for k in (active, previous)
        if k
    ]
    return Keyring(keks[0], *keks[1:])


class KeyVault:
    """Keyring + master seed + sealed-record cache. Everything secret is opened per call."""

    def __init__(
        self, settings: WalletManagerSettings, store: Store, network_info: NetworkInfo | None
    ) -> None:
        self._settings = settings
        self._store = store
        self._network_info = network_info
        self._keyring: Keyring | None = None
        self._lock = asyncio.Lock()
        self._sealed: OrderedDict[str, SealedSecret] = OrderedDict()
        # A configuration that cannot open the vault stays broken until restart (the environment cannot
        # change meanwhile): remembered, so requests do not pay the KDF again and again.
        self._broken: FailedPrecondition | None = None

    async def keyring(self) -> Keyring:
        if self._broken is not None:
            raise self._broken
        if self._keyring is None:
            async with self._lock:
                if self._broken is not None:
                    raise self._broken
                if self._keyring is None:
                    try:
                        ring = await load_keyring(self._settings, self._store, self._network_info)
                        await self._ensure_seed(ring)
                    except FailedPrecondition as exc:
                        self._broken = exc
                        raise
                    self._keyring = ring
        return self._keyring

    async def warm_up(self) -> None:
        """Called in the background at start-up: derive the KEKs and create the seed before traffic."""
        delay = 0.5
        while self._keyring is None:
            try:
                await self.keyring()
            except FailedPrecondition as exc:
                log.error("wallet keys unavailable: %s", exc.message)
                return
            except Exception as exc:  # database (or, for the devnet key, tron-client) not reachable yet
                log.warning("key vault not ready: %s", exc.__class__.__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    # -- master seed -----------------------------------------------------------------------------------

    async def _ensure_seed(self, ring: Keyring) -> None:
        """Generate the BIP39 master seed on first start (or check the stored one still opens)."""
        doc = await self._store.get_secret(SEED_ID)
        if doc is None:
            await self.store_mnemonic(ring, hd.generate_mnemonic(24), created_by="generated")
            doc = await self._store.get_secret(SEED_ID)
        if doc is None:
            raise RuntimeError("the master seed is missing right after it was stored")
        try:
            ring.open(SEED_ID, doc["sealed"], purpose="seed")[:] = b"\0" * 64
        except VaultError:  # another key, tampered, or a record stating refused KDF parameters
            raise vault_unavailable("WALLET_ENCRYPTION_KEY does not open the stored master seed") from None

    async def store_mnemonic(self, ring: Keyring, mnemonic: str, created_by: str) -> bool:
        """Seal and store a master mnemonic and its seed; False when a seed exists already."""
        words = hd.validate_mnemonic(mnemonic)
        seed = bytearray(hd.seed_from_mnemonic(words))
        try:
            sealed_seed = ring.seal(SEED_ID, seed, purpose="seed").to_doc()
            sealed_words = ring.seal(MNEMONIC_ID, words.encode(), purpose="mnemonic").to_doc()
        finally:
            seed[:] = bytes(len(seed))
        # The seed record is the claim: when two processes race, the first insert wins and the
        # loser's mnemonic is never written.
        if not await self._store.insert_secret(SEED_ID, "seed", "", sealed_seed):
            return False
        await self._store.insert_secret(MNEMONIC_ID, "mnemonic", "", sealed_words)
        log.info("master seed stored", extra={"fields": {"source": created_by}})
        return True

    async def with_seed(self, fn: Callable[[bytes], T]) -> T:
        """Run fn(seed) in a worker thread with the seed opened for that call only."""
        ring = await self.keyring()
        doc = await self._store.get_secret(SEED_ID)
        if doc is None:
            raise vault_unavailable("no master seed")

        def run() -> T:
            try:
                with ring.unsealed(SEED_ID, doc["sealed"], purpose="seed") as seed:
                    return fn(bytes(seed))
            except (UnknownKek, SecretUnavailable):
                raise vault_unavailable("the master seed cannot be decrypted") from None

        return await asyncio.to_thread(run)

    # -- wallet keys -----------------------------------------------------------------------------------

    async def seal_key(self, sid: str, wallet_id: str, private_key: bytes | bytearray) -> None:
        ring = await self.keyring()
        sealed = ring.seal(sid, private_key, purpose="private_key")
        if not await self._store.insert_secret(sid, "private_key", wallet_id, sealed.to_doc()):
            raise VaultError("a key is stored for this address already")
        self._remember(sid, sealed)

    def _remember(self, sid: str, sealed: SealedSecret) -> None:
        self._sealed[sid] = sealed
        self._sealed.move_to_end(sid)
        while len(self._sealed) > _SEALED_CACHE_MAX:
            self._sealed.popitem(last=False)

    async def _sealed_record(self, sid: str, refresh: bool = False) -> SealedSecret:
        rec = None if refresh else self._sealed.get(sid)
        if rec is None:
            doc = await self._store.get_secret(sid)
            if doc is None:
                raise vault_unavailable("no key is stored for this address")
            try:
                rec = SealedSecret.from_doc(doc["sealed"])
            except VaultError as exc:  # malformed, or stating KDF parameters below the minimum
                raise vault_unavailable(f"the wallet's key record is refused: {exc}") from None
            self._remember(sid, rec)
        return rec

    async def sign_digest(self, sid: str, digest: bytes, expected_address: str) -> bytes:
        """r||s||v (v in {0,1}) over a 32-byte digest with the sealed key `sid`, checked to recover to
        expected_address. The key is decrypted for this call only."""
        ring = await self.keyring()
        for refresh in (False, True):
            rec = await self._sealed_record(sid, refresh)
            try:
                with ring.unsealed(sid, rec, purpose="private_key") as key:
                    sig = sign_digest(bytes(key), digest)
                break
            except (UnknownKek, SecretUnavailable):
                if refresh:  # the stored record itself does not open: wrong key or tampered
                    raise vault_unavailable("the wallet's key cannot be decrypted") from None
        require_signer(digest, sig, expected_address)
        return sig

    # -- integrity tags (services/wallet_manager/integrity.py) -----------------------------------------

    async def tag(self, *parts: str | bytes) -> dict[str, Any]:
        """An integrity tag over parts under the active key (stored beside what it covers)."""
        return (await self.keyring()).tag(*parts)

    async def tag_valid(self, stored: Any, *parts: str | bytes) -> bool:
        """Whether a stored tag covers parts under the active or a still-accepted key."""
        return (await self.keyring()).check_tag(stored, *parts)
