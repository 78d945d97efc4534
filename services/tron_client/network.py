"""The network endpoints' logic: read the node, shape integers, cache briefly per endpoint.

Kept free of protobuf types so it can be tested against the node alone; servicer.py maps results
to the contract's messages.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from services.common.errors import Unavailable
from services.tron_client.cache import TTLCache
from services.tron_client.convert import now_ms
from services.tron_client.node import JSON
from services.tron_client.pool import NodeHealth, NodePool
from services.tron_client.settings import TronClientSettings

# Seconds each endpoint's answer is reused. Status/height move with every block (3 s on TRON).
TTL_INFO = 10.0
TTL_FEES = 10.0
TTL_STATUS = 2.0
TTL_HEIGHT = 1.0


@dataclass(frozen=True, slots=True)
class Block:
    number: int
    block_id: str
    time_ms: int

    @classmethod
    def from_json(cls, block: JSON) -> Block:
        raw = block.get("block_header", {}).get("raw_data", {})
        return cls(int(raw.get("number", 0)), str(block.get("blockID", "")), int(raw.get("timestamp", 0)))


NO_BLOCK = Block(0, "", 0)


@dataclass(frozen=True, slots=True)
class NetworkInfo:
    network: str
    chain_id: int
    network_id: int
    node_version: str
    witness_count: int
    node_url: str


@dataclass(frozen=True, slots=True)
class BlockHeight:
    head: Block
    solidified: Block


@dataclass(frozen=True, slots=True)
class NetworkStatus:
    reachable: bool
    synced: bool
    latency_ms: int
    head: Block
    solidified: Block
    nodes: list[NodeHealth]
    checked_ms: int


@dataclass(frozen=True, slots=True)
class NetworkFees:
    energy_price_sun: int
    bandwidth_price_sun: int
    create_account_fee_sun: int
    create_account_system_contract_fee_sun: int
    memo_fee_sun: int
    multi_sign_fee_sun: int
    max_fee_limit_sun: int
    read_ms: int


def chain_id_from_genesis(block_id_hex: str) -> int:
    """TIP-712 / TronWeb chain id: the last 4 bytes of the genesis block id."""
    return int(block_id_hex[-8:], 16)


class Network:
    """Network information through the node pool, each endpoint cached briefly."""

    def __init__(self, settings: TronClientSettings, pool: NodePool) -> None:
        self._settings = settings
        self.node = pool
        self._cache = TTLCache()

    async def info(self) -> NetworkInfo:
        return await self._cache.get("info", TTL_INFO, self._fetch_info)

    async def height(self) -> BlockHeight:
        return await self._cache.get("height", TTL_HEIGHT, self._fetch_height)

    async def status(self) -> NetworkStatus:
        return await self._cache.get("status", TTL_STATUS, self._fetch_status)

    async def fees(self) -> NetworkFees:
        return await self._cache.get("fees", TTL_FEES, self._fetch_fees)

    async def _fetch_info(self) -> NetworkInfo:
        node_info, witnesses, chain_id = await asyncio.gather(
            self.node.call("wallet/getnodeinfo"), self.node.call("wallet/listwitnesses"), self._chain_id()
        )
        config = node_info.get("configNodeInfo", {})
        network_id = self._settings.TRON_NETWORK_ID
        if network_id is None:
            network_id = int(config.get("p2pVersion") or 0)  # java-tron's p2p network id
        return NetworkInfo(
            network=self._settings.TRON_NETWORK.value,
            chain_id=chain_id,
            network_id=network_id,
            node_version=str(config.get("codeVersion") or config.get("versionNum") or ""),
            witness_count=len(witnesses.get("witnesses", [])),
            node_url=self.node.ranked()[0].url,
        )

    async def _chain_id(self) -> int:
        if self._settings.TRON_CHAIN_ID is not None:
            return self._settings.TRON_CHAIN_ID
        genesis = await self.node.call("wallet/getblockbynum", {"num": 0})
        block_id = genesis.get("blockID", "")
        if len(block_id) != 64:
            raise Unavailable("TRON node has no genesis block", reason="NODE_BAD_RESPONSE")
        return chain_id_from_genesis(block_id)

    async def _fetch_height(self) -> BlockHeight:
        head, solid = await asyncio.gather(
            self.node.call("wallet/getnowblock"), self.node.call("walletsolidity/getnowblock")
        )
        return BlockHeight(Block.from_json(head), Block.from_json(solid))

    async def _fetch_status(self) -> NetworkStatus:
        # Unreachable nodes are a status, not an error.
        try:  # bounded: a status answer must not wait out every retry against hanging nodes
            async with asyncio.timeout(self._settings.TRON_NODE_TIMEOUT):
                height = await self.height()
        except (Unavailable, TimeoutError):
            return NetworkStatus(False, False, 0, NO_BLOCK, NO_BLOCK, self.node.health(), now_ms())
        head = height.head
        lag_ms = now_ms() - head.time_ms
        synced = head.time_ms > 0 and lag_ms <= self._settings.TRON_SYNC_MAX_LAG_SECONDS * 1000
        nodes = self.node.health()
        latency = round(self.node.ranked()[0].latency_ms or 0)
        return NetworkStatus(True, synced, latency, head, height.solidified, nodes, now_ms())

    async def chain_parameters(self) -> list[tuple[str, int]]:
        """getchainparameters as (key, value) in the node's order, cached like the fees."""
        return await self._cache.get("params", TTL_FEES, self._fetch_params)

    async def _fetch_params(self) -> list[tuple[str, int]]:
        data = await self.node.call("wallet/getchainparameters")
        # java-tron omits `value` when it is 0.
        params = [(str(p.get("key", "")), int(p.get("value", 0))) for p in data.get("chainParameter", [])]
        if not any(k == "getEnergyFee" for k, _ in params):
            raise Unavailable("TRON node returned no chain parameters", reason="NODE_BAD_RESPONSE")
        return params

    async def _fetch_fees(self) -> NetworkFees:
        params = dict(await self.chain_parameters())
        return NetworkFees(
            energy_price_sun=params.get("getEnergyFee", 0),
            bandwidth_price_sun=params.get("getTransactionFee", 0),
            create_account_fee_sun=params.get("getCreateAccountFee", 0),
            create_account_system_contract_fee_sun=params.get("getCreateNewAccountFeeInSystemContract", 0),
            memo_fee_sun=params.get("getMemoFee", 0),
            multi_sign_fee_sun=params.get("getMultiSignFee", 0),
            max_fee_limit_sun=params.get("getMaxFeeLimit", 0),
            read_ms=now_ms(),
        )
