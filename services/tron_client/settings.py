"""tron-client's own settings: the TRON node(s), transaction building and block sync."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, SecretStr, model_validator

from services.common.settings import DEFAULT_CHAIN_IDS, DEFAULT_NODE_URLS, Settings, TokenList


def _node_urls(value: str) -> str:
    if not value:  # empty: the network's default is filled in later
        return value
    for i, url in enumerate(u.strip() for u in value.split(",")):
        if not url.startswith(("http://", "https://")) or len(url) < 10:
            # Named by position, not echoed: a URL may carry credentials (user:password@).
            raise ValueError(f"entry {i + 1} is not an http(s) URL")
    return value


class TronClientSettings(Settings):
    """Settings of tron-client, the only service that talks to a TRON node."""

    # TRON node(s): comma-separated list; on equal health the first is preferred.
    TRON_NODE_URL: Annotated[str, AfterValidator(_node_urls)] = ""
    # TRON-PRO-API-KEY: the default for every node, and optional per-node keys in TRON_NODE_URL order
    # (comma-separated; an empty entry falls back to TRON_NODE_API_KEY). Kept out of the URLs so they stay
    # secret (SecretStr) while URLs are shown in status and metrics.
    TRON_NODE_API_KEY: SecretStr = SecretStr("")
    TRON_NODE_API_KEYS: SecretStr = SecretStr("")
    # Seconds between health probes (head, latency) of every node; set-aside nodes are probed back.
    TRON_NODE_PROBE_SECONDS: float = Field(default=5.0, gt=0, le=3600)
    # Transaction building: validity window, reference block (java-tron default: solid) and whether the
    # txID of every build is checked against the node's own (one extra round trip).
    TRON_TX_EXPIRATION_SECONDS: int = Field(default=60, ge=3, le=86400)
    TRON_REF_BLOCK: str = Field(default="solid", pattern="^(solid|head)$")
    TRON_TXID_CHECK: bool = True
    TRON_NODE_TIMEOUT: float = Field(default=5.0, gt=0, le=120)
    TRON_NETWORK_ID: int | None = Field(default=None, ge=0)
    TRON_CHAIN_ID: int | None = Field(default=None, ge=0)
    # A head block older than this many seconds means the node is not synced.
    TRON_SYNC_MAX_LAG_SECONDS: int = Field(default=60, gt=0)
    # Block sync: on/off, first block on a fresh database (unset: the head at first start), TRC20 tokens
    # followed besides USDT (comma-separated), head poll interval, blocks per fetch/write batch, concurrent
    # node requests while backfilling.
    TRON_SYNC_ENABLED: bool = True
    TRON_SYNC_START_BLOCK: int | None = Field(default=None, ge=0)
    TRON_SYNC_TOKENS: TokenList = ""
    TRON_SYNC_POLL_SECONDS: float = Field(default=1.0, gt=0, le=60)
    TRON_SYNC_BATCH_BLOCKS: int = Field(default=50, ge=1, le=100)
    TRON_SYNC_CONCURRENCY: int = Field(default=8, ge=1, le=64)
    # History rescans (WatchAddresses with start_block): how far behind the sync cursor a start may be
    # (200 000 blocks: about a week of 3 s blocks) and how many blocks one sync step reads for them.
    TRON_RESCAN_MAX_BLOCKS: int = Field(default=200_000, ge=1)
    TRON_RESCAN_BATCH_BLOCKS: int = Field(default=100, ge=1, le=100)

    @model_validator(mode="after")
    def _network_defaults(self) -> TronClientSettings:
        # Fill network-dependent defaults; frozen models are set through object.__setattr__.
        if not self.TRON_NODE_URL:
            object.__setattr__(self, "TRON_NODE_URL", DEFAULT_NODE_URLS[self.TRON_NETWORK])
        if self.TRON_CHAIN_ID is None and self.TRON_NETWORK in DEFAULT_CHAIN_IDS:
            object.__setattr__(self, "TRON_CHAIN_ID", DEFAULT_CHAIN_IDS[self.TRON_NETWORK])
        keys = self.TRON_NODE_API_KEYS.get_secret_value()
        if keys and len(keys.split(",")) != len(self.tron_node_urls):
            raise ValueError("TRON_NODE_API_KEYS: needs one entry (possibly empty) per TRON_NODE_URL")
        return self

    @property
    def tron_node_urls(self) -> tuple[str, ...]:
        """The configured node URLs in preference order, without trailing slashes."""
        return tuple(u.strip().rstrip("/") for u in self.TRON_NODE_URL.split(","))

    @property
    def tron_nodes(self) -> tuple[tuple[str, SecretStr], ...]:
        """(url, api key) per configured node, keys from TRON_NODE_API_KEYS or TRON_NODE_API_KEY."""
        urls = self.tron_node_urls
        keys = (
            self.TRON_NODE_API_KEYS.get_secret_value().split(",")
            if self.TRON_NODE_API_KEYS.get_secret_value()
            else []
        )
        keys += [""] * (len(urls) - len(keys))
        return tuple(
            (u, SecretStr(k.strip()) if k.strip() else self.TRON_NODE_API_KEY)
            for u, k in zip(urls, keys, strict=True)
        )

    @property
    def sync_tokens(self) -> tuple[str, ...]:
        """TRC20 contracts block sync follows: USDT first, then TRON_SYNC_TOKENS, without duplicates."""
        return self.usdt_and(self.TRON_SYNC_TOKENS)
