"""The one rule for list RPCs (AIP-158), used by every List* RPC of every service.

`page_size` 0 means DEFAULT_PAGE_SIZE; the contracts reject more than MAX_PAGE_SIZE. A page token is
opaque to the client (urlsafe base64 of JSON) and bound to the request it was issued for: it carries a
digest of the request's message type and every field except page_size and page_token, so reusing it with
other filters (or on another list) is INVALID_ARGUMENT INVALID_PAGE_TOKEN rather than a wrong page.

    page = Page.of(request)                       # validates the token
    docs = await find(after=page.after, limit=page.fetch_limit)
    items, token = page.finish(docs, key=lambda d: d["_id"])
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson
from google.protobuf.message import Message

from services.common import context
from services.common.errors import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000  # the contracts' `lte` on every page_size

T = TypeVar("T")


def _scope(request: Message) -> str:
    """Digest of the request's type and filters (everything but the page fields)."""
    filters = type(request)()
    filters.CopyFrom(request)
    for name in ("page_size", "page_token"):
        filters.ClearField(name)
    data = request.DESCRIPTOR.full_name.encode() + b"\0" + filters.SerializeToString(deterministic=True)
    return hashlib.sha256(data).hexdigest()[:16]


def _bad_token() -> InvalidArgument:
    return InvalidArgument(
        "page_token is not valid for this request",
        [FieldViolation("page_token", "not a token from a previous response with the same filters",
                        "INVALID_PAGE_TOKEN")],
        reason="INVALID_PAGE_TOKEN",
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list request: its size and the position after which it starts (None: the first)."""

    size: int
    after: Any
    scope: str

    @classmethod
    def of(cls, request: Message) -> Page:
        """Read page_size and page_token of a List request; INVALID_ARGUMENT for a foreign token."""
        requested = getattr(request, "page_size", 0)
        size = min(requested, MAX_PAGE_SIZE) if requested > 0 else DEFAULT_PAGE_SIZE
        scope = _scope(request)
        token = getattr(request, "page_token", "")
        if not token:
            return cls(size, None, scope)
        try:
            value = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        except (ValueError, TypeError):
            raise _bad_token() from None
        if not isinstance(value, dict) or value.get("s") != scope or "k" not in value:
            raise _bad_token()
        return cls(size, value["k"], scope)

    @property
    def fetch_limit(self) -> int:
        """Ask the store for one more than a page: its presence says whether another page follows."""
        return self.size + 1

    def token_after(self, position: Any) -> str:
        """The token of the page that starts after `position` (any JSON value)."""
        raw = orjson.dumps({"s": self.scope, "k": position})
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def finish(self, fetched: Sequence[T], key: Callable[[T], Any]) -> tuple[list[T], str]:
        """This page's items from up to `fetch_limit` fetched ones, and the next token ("" at the end)."""
        items = list(fetched[: self.size])
        more = len(fetched) > self.size
        return items, self.token_after(key(items[-1])) if more and items else ""


#: The order of lists newest first; `newest_first` and `position_of` page through it.
NEWEST_FIRST = [("create_time", -1), ("_id", -1)]


def newest_first(filters: dict[str, Any], after: Any) -> dict[str, Any]:
    """The query of a page in NEWEST_FIRST order after `after` (a `position_of` value; None: the first page),
    confined to the current call's tenant."""
    query = dict(filters)
    if (tenant := context.tenant_scope()) is not None:
        query["tenant"] = tenant
    if after is not None:
        at = datetime.fromisoformat(after[0])
        query["$or"] = [{"create_time": {"$lt": at}}, {"create_time": at, "_id": {"$lt": after[1]}}]
    return query


def position_of(doc: dict[str, Any]) -> list[str]:
    """A document's place in NEWEST_FIRST order, as a page token keeps it."""
    return [doc["create_time"].isoformat(), doc["_id"]]
