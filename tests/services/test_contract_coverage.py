"""No silently unimplemented RPC: a finished service implements every RPC of its contract; only services
that declare themselves unfinished answer UNIMPLEMENTED, and README says which are which."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest
from tronpay.usdt_manager.v1 import usdt_manager_pb2, usdt_manager_pb2_grpc

from services.common.contract import grpc_modules, registrations, unimplemented_methods
from services.common.server import ServiceSpec
from tests.harness.services import service_specs

REPO = Path(__file__).resolve().parents[2]
SPECS = service_specs()


def _servicer_classes(package: str) -> dict[str, list[type]]:
    """Classes defined in services/<package> by generated servicer base name."""
    found: dict[str, list[type]] = {}
    pkg = importlib.import_module(f"services.{package}")
    for info in pkgutil.walk_packages(pkg.__path__, f"{pkg.__name__}."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for cls in vars(module).values():
            if inspect.isclass(cls) and cls.__module__ == module.__name__:
                for base in cls.__mro__[1:]:
                    if base.__module__.endswith("_pb2_grpc"):
                        found.setdefault(base.__name__, []).append(cls)
    return found


@pytest.mark.parametrize("spec", [s for s in SPECS if s.finished], ids=lambda s: s.name.value)
def test_a_finished_service_implements_every_rpc(spec: ServiceSpec[Any]) -> None:
    package = spec.name.value
    classes = _servicer_classes(package)
    for pb2_mod, grpc_mod in grpc_modules(package):
        for svc in pb2_mod.DESCRIPTOR.services_by_name.values():
            base = getattr(grpc_mod, f"{svc.name}Servicer")
            (impl,) = classes.get(base.__name__, [None])
            assert impl is not None, f"{package}: no servicer for {svc.full_name}"
            assert unimplemented_methods(impl, base, svc.methods_by_name) == []


def test_a_finished_service_that_lacks_an_rpc_does_not_start() -> None:
    class Partial(usdt_manager_pb2_grpc.UsdtManagerServiceServicer):
        async def GetBalance(
            self, request: usdt_manager_pb2.GetBalanceRequest, context: object
        ) -> usdt_manager_pb2.GetBalanceResponse:
            raise NotImplementedError

    partial = Partial()  # type: ignore[abstract]  # lacking RPCs is the point
    missing = r"missing: tronpay\.usdt_manager\.v1\.UsdtManagerService\.CreateTransfer"
    with pytest.raises(ValueError, match=missing):
        registrations("usdt_manager", [partial], finished=True)
    with pytest.raises(ValueError, match="missing"):
        registrations("usdt_manager", [], finished=True)
    (reg,) = registrations("usdt_manager", [partial], finished=False)  # unfinished: the rest says so
    assert isinstance(reg.servicer, Partial)
    assert inspect.iscoroutinefunction(type(reg.servicer).CreateTransfer)


def test_readme_says_which_services_are_complete() -> None:
    readme = (REPO / "README.md").read_text()
    for spec in SPECS:
        row = re.search(rf"^\| `?{spec.name.dashed}`? \|.*$", readme, re.M)
        assert row is not None, f"README has no status row for {spec.name.dashed}"
        assert ("complete" in row.group(0).lower().split("|")[2]) == spec.finished, row.group(0)
