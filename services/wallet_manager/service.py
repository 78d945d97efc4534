"""Wiring of wallet-manager: its servicers, settings and the indexes its collections need."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from services.common.server import Runtime, ServiceSpec
from services.common.settings import ServiceName
from services.wallet_manager import store as store_mod
from services.wallet_manager.chain import Chain
from services.wallet_manager.devices import Devices
from services.wallet_manager.keys import KeyVault
from services.wallet_manager.servicer import WalletManagerServicer
from services.wallet_manager.settings import WalletManagerSettings
from services.wallet_manager.signing import Signing
from services.wallet_manager.wallets import Wallets


async def build(rt: Runtime[WalletManagerSettings]) -> Sequence[object]:
    """The servicers of tronpay.wallet_manager.v1."""
    store = store_mod.Store(rt.db)
    chain = Chain(rt.settings, rt.clients)
    keys = KeyVault(rt.settings, store, chain.network_info)
    devices = Devices(rt.settings)
    wallets = Wallets(rt.settings, store, keys, devices, chain)
    signing = Signing(rt.settings, store, keys, devices, chain)
    # Derive the KEKs (scrypt) and create the master seed before the first request needs them.
    warm = asyncio.create_task(keys.warm_up())

    async def stop_warm_up() -> None:
        warm.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await warm

    rt.on_stop(stop_warm_up)
    return [WalletManagerServicer(rt, store, wallets, signing)]


SERVICE = ServiceSpec(ServiceName.WALLET_MANAGER, WalletManagerSettings, build, store_mod.INDEXES)
