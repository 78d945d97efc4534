"""Verify and export the services' hash-chained audit logs, reading MongoDB directly (docs/audit.md).

    python -m tools.audit verify [--service wallet_manager] [--anchor SEQ:HASH]
    python -m tools.audit export --service wallet_manager [--after-seq N] > wallet_manager-audit.jsonl

The database comes from --mongodb-uri / --database, else from MONGODB_URI / PAYMENT_DB_NAME (prefer the
environment for a URI with a password: command lines are visible to other users). `verify` checks every
service's log it finds (`<service>_audit_log`) unless --service names one, prints each log's head (seq and
hash: keep it outside the database and pass it back as --anchor to detect a truncated tail) and exits 0 when
every chain holds, 1 naming the first broken or missing record, 2 when it cannot check (no such log, no
database). `export` writes one record per line, each in the canonical encoding its hash covers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from services.common.audit import COLLECTION, Anchor, AuditLog, VerifyResult
from services.common.mongo import Document, ServiceDatabase

DEFAULT_URI = "mongodb://127.0.0.1:27017/"
DEFAULT_DATABASE = "tronpay"
TIMEOUT_MS = 5000
_ANCHOR = re.compile(r"^([1-9][0-9]*):([0-9a-f]{64})$")


class CannotCheck(Exception):
    """The logs cannot be checked at all (exit 2)."""


def _anchor(value: str) -> Anchor:
    match = _ANCHOR.match(value)
    if match is None:
        raise argparse.ArgumentTypeError("expected SEQ:HASH (a positive integer, 64 lowercase hex digits)")
    return Anchor(int(match[1]), match[2])


async def _services(client: AsyncMongoClient[Document], database: str, wanted: str | None) -> list[str]:
    suffix = f"_{COLLECTION}"
    found = sorted(
        n.removesuffix(suffix) for n in await client[database].list_collection_names() if n.endswith(suffix)
    )
    if wanted is not None:
        if wanted not in found:
            raise CannotCheck(f"database {database} has no audit log for {wanted} ({wanted}{suffix})")
        return [wanted]
    if not found:
        raise CannotCheck(f"database {database} has no audit logs (*{suffix})")
    return found


def _report(service: str, result: VerifyResult) -> str:
    head = f"head seq {result.head.seq} hash {result.head.hash}" if result.head else "no records"
    if result.broken is None:
        return f"{service}: intact, {result.count} records, {head}"
    b = result.broken
    where = f"seq {b.seq}" if b.seq else "a record"
    return (
        f"{service}: BROKEN at {where} ({b.reason}): {b.description}; "
        f"{result.count} records intact before it, last intact: {head}"
    )


async def verify(client: AsyncMongoClient[Document], args: argparse.Namespace) -> int:
    services = await _services(client, args.database, args.service)
    if args.anchor is not None and len(services) != 1:
        raise CannotCheck("--anchor belongs to one log: name it with --service")
    broken = False
    for service in services:
        result = await AuditLog(ServiceDatabase(client, args.database, service)).verify(args.anchor)
        print(_report(service, result))
        broken = broken or not result.intact
    return 1 if broken else 0


async def export(client: AsyncMongoClient[Document], args: argparse.Namespace) -> int:
    (service,) = await _services(client, args.database, args.service)
    log = AuditLog(ServiceDatabase(client, args.database, service))
    async for record in log.export(args.after_seq):
        # An altered record may hold values JSON cannot encode: they are written as text, still exported.
        line = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        sys.stdout.write(line + "\n")
    return 0


async def run(args: argparse.Namespace) -> int:
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        args.mongodb_uri, tz_aware=True, serverSelectionTimeoutMS=TIMEOUT_MS, appname="tools.audit"
    )
    try:
        result: int = await args.command(client, args)
        return result
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.audit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--mongodb-uri", default=os.environ.get("MONGODB_URI", DEFAULT_URI))
    common.add_argument("--database", default=os.environ.get("PAYMENT_DB_NAME", DEFAULT_DATABASE))
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_verify = sub.add_parser("verify", parents=[common], help="walk the chains; exit 1 naming a break")
    p_verify.add_argument("--service", help="only this service's log (e.g. wallet_manager)")
    p_verify.add_argument("--anchor", type=_anchor, help="SEQ:HASH of a head kept outside the database")
    p_verify.set_defaults(command=verify)
    p_export = sub.add_parser("export", parents=[common], help="write a log as JSON lines to stdout")
    p_export.add_argument("--service", required=True, help="the service whose log to export")
    p_export.add_argument("--after-seq", type=int, default=0, help="only records after this seq")
    p_export.set_defaults(command=export)
    args = parser.parse_args(argv)
    if getattr(args, "after_seq", 0) < 0:
        parser.error("--after-seq must not be negative")
    try:
        return asyncio.run(run(args))
    except CannotCheck as exc:
        print(f"audit {args.cmd}: {exc}", file=sys.stderr)
    except PyMongoError as exc:  # the message names hosts, never the URI's credentials
        print(f"audit {args.cmd}: database error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
