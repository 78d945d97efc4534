"""Serve a service's whole generated contract: every gRPC service in `tronpay.<name>.v1`.

A process passes the servicers it implements; any other service of its package (internal ones
included) is served by a generated-base subclass whose RPCs answer UNIMPLEMENTED, so the full
contract is always reachable and routes never 404.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from services.common.server import Registration, with_unimplemented_defaults


def _grpc_modules(package: str) -> list[tuple[ModuleType, ModuleType]]:
    pkg = importlib.import_module(f"tronpay.{package}.v1")
    pairs = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.endswith("_pb2_grpc"):
            grpc_mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
            pb2_mod = importlib.import_module(f"{pkg.__name__}.{info.name.removesuffix('_grpc')}")
            pairs.append((pb2_mod, grpc_mod))
    return pairs


def registrations(package: str, servicers: Iterable[object] = ()) -> list[Registration]:
    """Registrations for every service in `tronpay.<package>.v1`, using `servicers` where given."""
    given = list(servicers)
    used: set[int] = set()
    out = []
    for pb2_mod, grpc_mod in _grpc_modules(package):
        for svc in pb2_mod.DESCRIPTOR.services_by_name.values():
            base: type[Any] = getattr(grpc_mod, f"{svc.name}Servicer")
            add = getattr(grpc_mod, f"add_{svc.name}Servicer_to_server")
            servicer = next((s for s in given if isinstance(s, base)), None)
            if servicer is None:
                servicer = with_unimplemented_defaults(type(f"{svc.name}Unimplemented", (base,), {}))()
            else:
                used.add(id(servicer))
            out.append(Registration(servicer, add, svc.full_name))
    unused = [type(s).__name__ for s in given if id(s) not in used]
    if unused:
        raise ValueError(f"servicers not in the tronpay.{package}.v1 contract: {', '.join(unused)}")
    if not out:
        raise ValueError(f"no gRPC services in tronpay.{package}.v1")
    return out
