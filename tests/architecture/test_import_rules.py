"""Import boundaries of DESIGN.md, checked statically on every .py file under services/.

A package services/<a>/ may import services.common, generated stubs (tronpay.*) and third-party packages,
never another service's package services.<b>; services.common imports no service; nothing under services/
imports devnet (a separate program the services know only as a node URL). tests/ may import anything.
Static imports (also inside functions and TYPE_CHECKING blocks), relative imports and
importlib.import_module / __import__ calls with a string literal are checked.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "services"
SHARED = "common"


def _module_name(path: Path) -> tuple[str, bool]:
    """Dotted module name of a file under the repository root, and whether it is a package __init__."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def _resolve(module: str | None, level: int, name: str, is_package: bool) -> str:
    """Absolute name of `from <level dots><module> import ...` written in module `name`."""
    if level == 0:
        return module or ""
    parts = name.split(".")
    base = parts[: len(parts) - level + (1 if is_package else 0)]
    return ".".join(base + ([module] if module else []))


def imported_modules(tree: ast.AST, name: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in tree, a module called name."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module, node.level, name, is_package)
            yield node.lineno, base
            for alias in node.names:  # `from services import tron_client` imports a package too
                yield node.lineno, f"{base}.{alias.name}" if base else alias.name
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            callee = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            arg = node.args[0]
            is_import = callee in ("import_module", "__import__")
            if is_import and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                yield node.lineno, arg.value


def violations(source: str, path: Path) -> list[str]:
    """`path:line: message` for each import in source (the text of path under services/) breaking a rule."""
    name, is_package = _module_name(path)
    owner = name.split(".")[1] if name.count(".") >= 1 else ""  # services.<owner>...
    found: dict[tuple[int, str], str] = {}  # one report per line and forbidden package
    for line, module in imported_modules(ast.parse(source, str(path)), name, is_package):
        parts = module.split(".")
        where = f"{path.relative_to(REPO)}:{line}"
        if parts[0] == "devnet":
            found.setdefault((line, "devnet"), f"{where}: imports {module} (devnet is a separate program)")
        elif parts[0] == "services" and len(parts) > 1 and parts[1] not in (owner, SHARED):
            message = f"{where}: {name} imports {module} (another service's package)"
            found.setdefault((line, parts[1]), message)
    return list(found.values())


def test_services_respect_the_import_boundaries() -> None:
    files = sorted(SERVICES.rglob("*.py"))
    assert len(files) > 50, "services/ not found"
    found = [v for path in files for v in violations(path.read_text(), path)]
    assert not found, "imports across service boundaries:\n" + "\n".join(found)


def test_scanner_detects_violations() -> None:
    path = SERVICES / "tron_client" / "example.py"
    bad = """
from services.wallet_manager import keys
import services.usdt_manager.service
from services import payout_router
from ..trx_staking import servicer
import devnet.engine
from devnet import chain

def lazy():
    import importlib
    importlib.import_module("services.payment_gateway.service")
    __import__("devnet")
"""
    lines = [v.split(":")[1] for v in violations(bad, path)]
    assert lines == ["2", "3", "4", "5", "6", "7", "11", "12"], violations(bad, path)

    good = """
from services.common import errors
from services.tron_client.pool import NodePool
from services import common
from . import sync
from .. import common as shared
from tronpay.tron_client.v1 import tron_client_pb2
import importlib
importlib.import_module("tronpay.wallet_manager.v1")
"""
    assert violations(good, path) == []
    # services.common is shared by all and depends on no service.
    assert violations("from services.wallet_manager import keys\n", SERVICES / "common" / "x.py")
    assert violations("from ..wallet_manager import keys\n", SERVICES / "common" / "__init__.py")
