"""The node pool: every TRON call of the cluster goes through here.

Each configured node is scored by latency (EWMA), head lag (blocks behind the best head seen) and recent
errors; a call goes to the best node and fails over to the next. Retries (tenacity: exponential back-off
with jitter, bounded by attempts and a time budget) are only done for retry-safe calls: reads, and
broadcasts, which the network deduplicates by txID. A 429 cools the node down for its Retry-After. A node
that keeps failing is set aside and a background probe brings it back once it answers again. Nodes that
are all set aside or cooling are still tried as a last resort, so one node alone never locks itself out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
)
from tenacity.wait import wait_exponential_jitter

from services.common.logging import get_logger
from services.tron_client.convert import now_ms
from services.tron_client.node import JSON, RATE_LIMITED, NodeClient, NodeError
from services.tron_client.settings import TronClientSettings

log = get_logger("tron_client.pool")

EWMA_ALPHA = 0.3
ERROR_WINDOW_SECONDS = 60.0
SET_ASIDE_AFTER = 3  # consecutive failures
PROBE_SUCCESSES = 2  # consecutive successful probes to come back
# Cost weights of the score: 1 recent error ~ 250 ms of latency, 1 block of head lag ~ 100 ms.
ERROR_COST_MS = 250.0
RATE_LIMIT_COST_MS = 100.0
LAG_COST_MS = 100.0
MAX_LAG_COST_BLOCKS = 200
UNKNOWN_LATENCY_MS = 500.0
# Back-off before hitting the same node again: 50 ms, 100 ms, 200 ms ... up to 2 s, plus up to 100 ms jitter.
BACKOFF = wait_exponential_jitter(multiplier=0.05, max=2.0, jitter=0.1)

NODE_SECONDS = Histogram(
    "tron_node_request_seconds",
    "Round trip of TRON node HTTP calls, by node (successful calls).",
    ["node"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
NODE_ERRORS = Counter("tron_node_errors_total", "Failed TRON node calls, by node and kind.", ["node", "kind"])
NODE_HEAD_LAG = Gauge(
    "tron_node_head_lag_blocks", "Blocks a node's head is behind the best head seen.", ["node"]
)
NODE_HEAD = Gauge("tron_node_head_block", "Head block number a node reported last.", ["node"])
NODE_STATE = Gauge(
    "tron_node_state", "1 for the node's current rotation state, 0 otherwise.", ["node", "state"]
)


class NodeState(StrEnum):
    ACTIVE = "active"
    SET_ASIDE = "set_aside"
    PROBING = "probing"


@dataclass
class PoolNode:
    """One node's client and health."""

    index: int
    client: NodeClient
    state: NodeState = NodeState.ACTIVE
    latency_ms: float | None = None  # EWMA of successful calls
    head: int = 0
    consecutive_failures: int = 0
    cooldown_until: float = 0.0
    errors: deque[float] = field(default_factory=deque)
    rate_limited: deque[float] = field(default_factory=deque)
    last_error_ms: int = 0
    last_success_ms: int = 0
    last_error: str = ""

    @property
    def url(self) -> str:
        return self.client.display_url

    def recent(self, q: deque[float], now: float) -> int:
        while q and q[0] < now - ERROR_WINDOW_SECONDS:
            q.popleft()
        return len(q)


@dataclass(frozen=True, slots=True)
class NodeHealth:
    """A snapshot of one node for GetNetworkStatus."""

    url: str
    state: NodeState
    latency_ms: int
    head: int
    head_lag: int
    error_count: int
    rate_limited_count: int
    score: float
    last_error_ms: int
    last_success_ms: int


class NodePool:
    """Calls TRON nodes with scoring, failover, retries and health probing. See the module docstring."""

    def __init__(
        self,
        settings: TronClientSettings,
        *,
        clients: list[NodeClient] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        timeout = settings.TRON_NODE_TIMEOUT
        self.nodes = [
            PoolNode(i, c)
            for i, c in enumerate(clients or [NodeClient(u, k, timeout) for u, k in settings.tron_nodes])
        ]
        self.timeout = timeout
        # One call may spend this long in total across attempts and back-off.
        self.budget = max(2.0 * timeout, 2.0)
        self.max_attempts = max(4, 2 * len(self.nodes))
        self.probe_seconds = settings.TRON_NODE_PROBE_SECONDS
        self._clock = clock
        self._probe_task: asyncio.Task[None] | None = None
        self._lock_probe = asyncio.Lock()
        for n in self.nodes:
            self._set_state(n, NodeState.ACTIVE)

    # ---- scoring ----------------------------------------------------------------------------------
    @property
    def best_head(self) -> int:
        return max((n.head for n in self.nodes), default=0)

    def head_lag(self, node: PoolNode) -> int:
        return self.best_head - node.head if node.head else 0

    def score(self, node: PoolNode, now: float | None = None) -> float:
        """Higher is better: 10^4 / (10 + cost), cost = latency + error/429/lag penalties (ms)."""
        now = self._clock() if now is None else now
        cost = node.latency_ms if node.latency_ms is not None else UNKNOWN_LATENCY_MS
        cost += ERROR_COST_MS * node.recent(node.errors, now)
        cost += RATE_LIMIT_COST_MS * node.recent(node.rate_limited, now)
        cost += LAG_COST_MS * min(self.head_lag(node), MAX_LAG_COST_BLOCKS)
        return round(10_000.0 / (10.0 + cost), 3)

    def ranked(self, exclude: Collection[int] = ()) -> list[PoolNode]:
        """Nodes to try in order: usable active nodes by score (config order breaks ties), then the
        cooling and set-aside ones as a last resort."""
        now = self._clock()

        def usable(n: PoolNode) -> bool:
            return n.state == NodeState.ACTIVE and n.cooldown_until <= now

        candidates = [n for n in self.nodes if n.index not in exclude] or list(self.nodes)
        best = sorted((n for n in candidates if usable(n)), key=lambda n: (-self.score(n, now), n.index))
        rest = sorted(
            (n for n in candidates if not usable(n)),
            key=lambda n: (n.state != NodeState.ACTIVE, n.cooldown_until, -self.score(n, now)),
        )
        return best + rest

    # ---- bookkeeping ------------------------------------------------------------------------------
    def _set_state(self, node: PoolNode, state: NodeState) -> None:
        # Log entering and leaving rotation only; set-aside <-> probing repeats every probe round.
        if node.state == NodeState.ACTIVE and state != NodeState.ACTIVE:
            log.warning(
                "node %s set aside",
                node.url,
                extra={"fields": {"node": node.url, "last_error": node.last_error}},
            )
        elif node.state != NodeState.ACTIVE and state == NodeState.ACTIVE:
            log.info("node %s back in rotation", node.url, extra={"fields": {"node": node.url}})
        node.state = state
        for s in NodeState:
            NODE_STATE.labels(node.url, s.value).set(1 if s == state else 0)

    def _success(self, node: PoolNode, seconds: float) -> None:
        ms = seconds * 1000.0
        node.latency_ms = (
            ms if node.latency_ms is None else EWMA_ALPHA * ms + (1 - EWMA_ALPHA) * node.latency_ms
        )
        node.consecutive_failures = 0
        node.last_success_ms = now_ms()
        NODE_SECONDS.labels(node.url).observe(seconds)

    def _failure(self, node: PoolNode, err: NodeError) -> None:
        now = self._clock()
        node.last_error_ms = now_ms()
        node.last_error = f"{err.kind}: {err.message}"
        NODE_ERRORS.labels(node.url, err.kind).inc()
        if err.kind == RATE_LIMITED:
            # Alive but throttling: cool down for Retry-After instead of counting towards set-aside.
            node.rate_limited.append(now)
            node.cooldown_until = max(node.cooldown_until, now + err.retry_after)
            return
        node.errors.append(now)
        node.consecutive_failures += 1
        if node.state == NodeState.ACTIVE and node.consecutive_failures >= SET_ASIDE_AFTER:
            self._set_state(node, NodeState.SET_ASIDE)

    def note_head(self, node: PoolNode, number: int) -> None:
        if number > 0:
            node.head = number
            best = self.best_head
            NODE_HEAD.labels(node.url).set(number)
            for n in self.nodes:
                if n.head:
                    NODE_HEAD_LAG.labels(n.url).set(best - n.head)

    async def call_node(
        self,
        node: PoolNode,
        path: str,
        body: JSON | None = None,
        deadline_s: float | None = None,
        *,
        array_ok: bool = False,
    ) -> Any:
        """One attempt on one node, with health bookkeeping."""
        start = time.perf_counter()
        try:
            data = await node.client.call(path, body, deadline_s, array_ok=array_ok)
        except NodeError as err:
            self._failure(node, err)
            raise
        self._success(node, time.perf_counter() - start)
        if path == "wallet/getnowblock":
            self.note_head(node, int(data.get("block_header", {}).get("raw_data", {}).get("number", 0)))
        return data

    # ---- calls ------------------------------------------------------------------------------------
    async def call(self, path: str, body: JSON | None = None, *, retry_safe: bool = True) -> JSON:
        """Call the best node, failing over and retrying (retry-safe calls only); returns the node's JSON
        object, raises the last NodeError (UNAVAILABLE) when every attempt failed."""
        return await self._call(path, body, retry_safe=retry_safe, array_ok=False)

    async def call_any(self, path: str, body: JSON | None = None) -> Any:
        """Like call (retry-safe) but the answer may also be a JSON array (gettransactioninfobyblocknum);
        matches block sync's `JsonCall` shape."""
        return await self._call(path, body, retry_safe=True, array_ok=True)

    async def _call(self, path: str, body: JSON | None, *, retry_safe: bool, array_ok: bool) -> Any:
        if not retry_safe:
            return await self.call_node(self.ranked()[0], path, body, array_ok=array_ok)
        tried: set[int] = set()
        started = self._clock()

        def wait(state: RetryCallState) -> float:
            # Switching to another usable node needs no back-off; hitting the same node again does,
            # and a node cooling down after a 429 is waited for (within the budget).
            nxt = self.ranked(tried)[0]
            now = self._clock()
            if nxt.index not in tried and nxt.state == NodeState.ACTIVE and nxt.cooldown_until <= now:
                return 0.0
            backoff = BACKOFF(state)
            cool = max(0.0, min(n.cooldown_until for n in self.nodes) - now)
            remaining = self.budget - (now - started)
            return max(0.0, min(max(backoff, cool), remaining - 0.05))

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts) | stop_after_delay(self.budget),
            wait=wait,
            retry=retry_if_exception_type(NodeError),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if len(tried) >= len(self.nodes):
                    tried.clear()  # every node failed once: go round again
                node = self.ranked(tried)[0]
                tried.add(node.index)
                remaining = self.budget - (self._clock() - started)
                return await self.call_node(
                    node, path, body, deadline_s=max(remaining, 0.5), array_ok=array_ok
                )
        raise AssertionError("unreachable")  # reraise=True: the loop returns or raises

    # ---- health probe -----------------------------------------------------------------------------
    async def probe_once(self) -> None:
        """Ask every node for its head: refreshes latency/head of active nodes and brings set-aside
        nodes back after PROBE_SUCCESSES consecutive good answers."""
        async with self._lock_probe:
            await asyncio.gather(*(self._probe(n) for n in self.nodes))

    async def _probe(self, node: PoolNode) -> None:
        if node.state == NodeState.ACTIVE:
            if node.cooldown_until > self._clock():
                return  # rate limited: leave it alone until its Retry-After passed
            with contextlib.suppress(NodeError):
                await self.call_node(node, "wallet/getnowblock")
            return
        self._set_state(node, NodeState.PROBING)
        try:
            for _ in range(PROBE_SUCCESSES):
                await self.call_node(node, "wallet/getnowblock")
        except NodeError:
            self._set_state(node, NodeState.SET_ASIDE)
            return
        node.errors.clear()
        node.consecutive_failures = 0
        self._set_state(node, NodeState.ACTIVE)

    def start(self) -> None:
        """Start the background probe (call inside the running loop)."""
        if self._probe_task is None:
            self._probe_task = asyncio.get_running_loop().create_task(
                self._probe_loop(), name="tron-node-probe"
            )

    async def _probe_loop(self) -> None:
        while True:
            try:
                await self.probe_once()
            except Exception:  # the probe must outlive any single bad answer
                log.exception("node probe failed")
            await asyncio.sleep(self.probe_seconds)

    def health(self) -> list[NodeHealth]:
        now = self._clock()
        return [
            NodeHealth(
                url=n.url,
                state=n.state,
                latency_ms=round(n.latency_ms or 0),
                head=n.head,
                head_lag=self.head_lag(n),
                error_count=n.recent(n.errors, now),
                rate_limited_count=n.recent(n.rate_limited, now),
                score=self.score(n, now),
                last_error_ms=n.last_error_ms,
                last_success_ms=n.last_success_ms,
            )
            for n in self.nodes
        ]

    async def close(self) -> None:
        if self._probe_task is not None:
            self._probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe_task
            self._probe_task = None
        for n in self.nodes:
            await n.client.close()
