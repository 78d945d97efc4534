"""Serve a service's whole generated contract: every gRPC service in `tronpay.<name>.v1`.

A finished service passes a servicer for every gRPC service of its package, each overriding every RPC;
anything less stops start-up with the missing methods named (mypy catches it earlier: the generated
servicer bases are abstract). An unfinished service (ServiceSpec.finished=False) passes what it has; the
rest answers UNIMPLEMENTED naming the method, which the edge renders as 501 NOT_IMPLEMENTED, so the full
contract is always reachable and routes never 404.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import grpc

from services.common import errors


@dataclass(frozen=True)
class Registration:
    """One gRPC service to serve: its servicer, the generated add_*_to_server, its full name."""

    servicer: object
    add_to_server: Callable[[Any, grpc.aio.Server], None]
    full_name: str


def grpc_modules(package: str) -> list[tuple[ModuleType, ModuleType]]:
    """(messages module, grpc module) pairs of `tronpay.<package>.v1`."""
    pkg = importlib.import_module(f"tronpay.{package}.v1")
    pairs = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.endswith("_pb2_grpc"):
            grpc_mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
            pb2_mod = importlib.import_module(f"{pkg.__name__}.{info.name.removesuffix('_grpc')}")
            pairs.append((pb2_mod, grpc_mod))
    return pairs


def unimplemented_methods(servicer_class: type, base: type, rpc_names: Iterable[str]) -> list[str]:
    """RPCs of `base` that `servicer_class` leaves to the generated default."""
    return [n for n in rpc_names if getattr(servicer_class, n) is getattr(base, n)]


def with_unimplemented_defaults(cls: type) -> type:
    """RPCs `cls` does not override answer UNIMPLEMENTED naming the method (the generated default is sync
    and says only 'Method not implemented!'). Only for unfinished services."""
    base = next(b for b in cls.__mro__[1:] if b.__module__.endswith("_pb2_grpc"))
    for name, member in vars(base).items():
        if name.startswith("_") or not callable(member) or getattr(cls, name) is not member:
            continue

        def make(method: str) -> Callable[..., Awaitable[Any]]:
            async def unimplemented(self: Any, request: Any, context: Any) -> Any:
                raise errors.Unimplemented(f"not implemented yet: {method}", metadata={"method": method})

            unimplemented.__name__ = method
            return unimplemented

        setattr(cls, name, make(name))
    return cls


def registrations(
    package: str, servicers: Iterable[object] = (), *, finished: bool = True
) -> list[Registration]:
    """Registrations for every service in `tronpay.<package>.v1`, using `servicers` where given."""
    given = list(servicers)
    used: set[int] = set()
    missing: list[str] = []
    out = []
    for pb2_mod, grpc_mod in grpc_modules(package):
        for svc in pb2_mod.DESCRIPTOR.services_by_name.values():
            base: type[Any] = getattr(grpc_mod, f"{svc.name}Servicer")
            add = getattr(grpc_mod, f"add_{svc.name}Servicer_to_server")
            servicer = next((s for s in given if isinstance(s, base)), None)
            if servicer is None:
                servicer = type(f"{svc.name}Unimplemented", (base,), {})()
            else:
                used.add(id(servicer))
            lacking = unimplemented_methods(type(servicer), base, svc.methods_by_name)
            if lacking and finished:
                missing += [f"{svc.full_name}.{m}" for m in lacking]
            elif lacking:
                with_unimplemented_defaults(type(servicer))
            out.append(Registration(servicer, add, svc.full_name))
    unused = [type(s).__name__ for s in given if id(s) not in used]
    if unused:
        raise ValueError(f"servicers not in the tronpay.{package}.v1 contract: {', '.join(unused)}")
    if missing:
        raise ValueError(f"a finished service must implement every RPC; missing: {', '.join(missing)}")
    if not out:
        raise ValueError(f"no gRPC services in tronpay.{package}.v1")
    return out
