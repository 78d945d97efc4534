"""JSON structured logs to stdout, one object a line, stamped with the current call context and, when
tracing is on (services.common.tracing), the trace id ("-" outside a traced RPC)."""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from typing import Any

from services.common import context, tracing

_service = ""


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object; `extra={"fields": {...}}` adds structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": _service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        ctx = context.current()
        if ctx is not None:
            out.update(request_id=ctx.request_id, method=ctx.method)
            if ctx.subject:
                out["subject"] = ctx.subject
            if ctx.caller:
                out["caller"] = ctx.caller
        if tracing.enabled():
            out["trace_id"] = tracing.current_trace_id()
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exc"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(out, default=str)


def setup_logging(service: str, level: str = "INFO") -> None:
    """Route every logger to stdout as JSON; idempotent."""
    global _service
    _service = service
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Drivers are chatty at INFO.
    for noisy in ("pymongo", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> logging.Logger:
    """A module logger (stdlib; formatting is global)."""
    return logging.getLogger(name)
