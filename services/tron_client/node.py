"""A small async client for a TRON full node's HTTP API (java-tron / TronGrid / the devnet).

Only tron-client talks to a node. Every call has a timeout; the API key goes in TRON-PRO-API-KEY;
transport failures, 5xx and 429 become `Unavailable` (retryable) with the node named in metadata.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
from pydantic import SecretStr

from services.common.errors import Unavailable

JSON = dict[str, Any]


class NodeClient:
    """HTTP client for one node URL; `latency_ms` holds the duration of the last successful call."""

    def __init__(self, base_url: str, api_key: SecretStr, timeout_seconds: float) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Accept": "application/json"}
        if api_key.get_secret_value():
            headers["TRON-PRO-API-KEY"] = api_key.get_secret_value()
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds, connect=min(timeout_seconds, 3.0))
        self._headers = headers
        self._session: aiohttp.ClientSession | None = None
        self.latency_ms = 0

    def _http(self) -> aiohttp.ClientSession:
        # Created lazily: a ClientSession must be made inside the running loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self._session

    async def call(self, path: str, body: JSON | None = None) -> JSON:
        """POST a java-tron API path (e.g. 'wallet/getnowblock') and return its JSON object."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        start = time.perf_counter()
        try:
            async with self._http().post(url, json=body or {}) as resp:
                if resp.status == 429 or resp.status >= 500:
                    raise Unavailable(
                        f"TRON node answered HTTP {resp.status}",
                        reason="NODE_UNAVAILABLE" if resp.status != 429 else "NODE_RATE_LIMITED",
                        metadata={"node": self.base_url, "path": path, "http_status": str(resp.status)},
                    )
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise Unavailable(
                "TRON node unreachable",
                reason="NODE_UNAVAILABLE",
                metadata={"node": self.base_url, "path": path, "error": exc.__class__.__name__},
            ) from exc
        self.latency_ms = round((time.perf_counter() - start) * 1000)
        if not isinstance(data, dict):
            raise Unavailable(
                "TRON node sent an unexpected answer",
                reason="NODE_BAD_RESPONSE",
                metadata={"node": self.base_url, "path": path},
            )
        return data

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
