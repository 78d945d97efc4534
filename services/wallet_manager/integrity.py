"""Integrity tags over what the signing policy decides with but MongoDB holds in the clear: each wallet's
policy (bound to its wallet id) and each link of the daily-spend chains (its running totals).

A tag is an HMAC-SHA256 under a key derived (HKDF) from the KEK, itself derived (scrypt) from
WALLET_ENCRYPTION_KEY (vault/keystore.py), stored beside what it covers with the id of the KEK it was
made under. An attacker who can write to the database but does not hold the key cannot make one: a
policy edited, copied onto another wallet or stripped of its tag, or a day's totals lowered in place or
by a forged link, fails its check, and signing refuses (fail closed) with FAILED_PRECONDITION
INTEGRITY_CHECK_FAILED naming what failed.

What tags cannot show is a document deleted outright: removing a day's newest links rolls its totals back
to an earlier, correctly tagged link. A running replica keeps counting from the head it holds in memory;
one started after the deletion cannot tell (only a record kept outside the database could: the audit log).

Documents written before tags existed have none and are refused like forged ones until an operator adopts
them (`python -m services.wallet_manager seal-integrity`, trusting the database as it is at that moment);
`rotate-key` re-tags under the new key what verifies under the old one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from services.common import errors
from services.common.logging import get_logger

log = get_logger("services.wallet_manager.integrity")

INTEGRITY_CHECK_FAILED = "INTEGRITY_CHECK_FAILED"
POLICY_TAG = "policy_tag"  # field of a wallet document
LINK_TAG = "tag"  # field of a daily-spend link


def policy_parts(wallet_id: str, policy: bytes) -> tuple[str | bytes, ...]:
    """What a wallet's policy tag covers: the serialized SigningPolicy, bound to its wallet."""
    return ("policy", wallet_id, bytes(policy))


def _amounts(values: Mapping[str, Any]) -> str:
    return json.dumps({str(k): int(v) for k, v in values.items()}, sort_keys=True, separators=(",", ":"))


def link_parts(link: Mapping[str, Any]) -> tuple[str | bytes, ...]:
    """What a daily-spend link's tag covers: its place in its chain, what it adds and the running totals."""
    return (
        "daily_spend",
        str(link["_id"]),
        str(link["key"]),
        str(int(link["seq"])),
        _amounts(link["amounts"]),
        _amounts(link["totals"]),
        str(link["fingerprint"]),
        str(link["record_id"]),
    )


def failed(what: str, wallet_id: str) -> errors.FailedPrecondition:
    """The refusal for a document that failed its integrity check (also logged: it means tampering)."""
    log.error("integrity check failed: %s", what, extra={"fields": {"wallet_id": wallet_id}})
    return errors.FailedPrecondition(
        f"signing refused: {what} failed its integrity check (changed outside the service)",
        reason=INTEGRITY_CHECK_FAILED,
        metadata={"wallet_id": wallet_id, "record": what},
    )
