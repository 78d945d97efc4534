"""Proto toolchain of the cluster: dependency protos, code generation, freshness, lint and breaking checks.

    python tools/protogen.py deps             # .build/protodeps: google/api, google/rpc, buf/validate
    python tools/protogen.py gen [--out DIR]  # gen/ (or DIR): Python, gRPC, mypy stubs, Envoy descriptor
    python tools/protogen.py check            # regenerate into a temp dir and diff with gen/
    python tools/protogen.py lint             # buf lint + buf format -d --exit-code
    python tools/protogen.py breaking [--against REF]

Nothing third-party is copied into git. The dependency protos are materialized under .build/ (git-ignored)
from installed, pinned packages at build time:
- google/api/*.proto and google/rpc/*.proto: the .proto sources shipped in googleapis-common-protos.
- buf/validate/validate.proto: protovalidate (2.x) embeds its serialized FileDescriptorProto in
  protovalidate/_gen/buf/validate/validate_pb.py. It is rendered back to .proto text (tools/proto_render.py)
  and the rendering is verified by compiling it again and comparing with the embedded descriptor.
Tool versions are pinned: grpcio-tools and mypy-protobuf in uv.lock, buf in package-lock.json.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from tools.proto_render import render  # noqa: E402

PROTO_DIR = REPO / "proto"
BUILD_DIR = REPO / ".build"
DEPS_DIR = BUILD_DIR / "protodeps"
GEN_DIR = REPO / "gen"
BUF = REPO / "node_modules" / ".bin" / "buf"
VALIDATE_PROTO = "buf/validate/validate.proto"
ENVOY_DESCRIPTOR = Path("envoy") / "tronpay.pb"
OPENAPI_DOCUMENT = Path("openapi") / "openapi.json"
OPENAPI_PLUGIN = REPO / "tools" / "protoc-gen-openapi.sh"
# Not imported by our protos but needed in the Envoy descriptor: the transcoder's convert_grpc_status renders
# google.rpc.Status details (ErrorInfo, BadRequest, ...) only for types it finds there.
EXTRA_DEPS = ("google/rpc/code.proto", "google/rpc/error_details.proto", "google/rpc/status.proto")
IMPORT_RE = re.compile(r'^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;', re.M)

_SHIM = '''"""buf/validate/validate.proto for the google.protobuf runtime, loaded from protovalidate.

Written by tools/protogen.py; do not edit. protovalidate 2.x ships validate.proto's descriptor only inside
its own generated module (for the protobuf-py runtime), while the generated tronpay modules import
``buf.validate.validate_pb2``. This module adds that same serialized descriptor to the default pool and builds
the message classes from it, so nothing of validate.proto is copied into the repository.
"""

import importlib as _importlib

from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf import descriptor_pool as _descriptor_pool
from google.protobuf.internal import builder as _builder
from protovalidate._gen.buf.validate import validate_pb as _validate_pb

_serialized = _validate_pb.desc().proto.to_binary()
for _dep in _descriptor_pb2.FileDescriptorProto.FromString(_serialized).dependency:
    _importlib.import_module(_dep.removesuffix(".proto").replace("/", ".") + "_pb2")

DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile(_serialized)
_globals = globals()
_builder.BuildMessageAndEnumDescriptors(DESCRIPTOR, _globals)
_builder.BuildTopDescriptorsAndMessages(DESCRIPTOR, "buf.validate.validate_pb2", _globals)
'''

_SHIM_PYI = '''"""Type stub of the runtime loader of buf/validate/validate.proto (see validate_pb2.py).

The messages, enums and extensions are built at import time from protovalidate's descriptor, so their names
are typed as Any.
"""

from typing import Any

from google.protobuf.descriptor import FileDescriptor

DESCRIPTOR: FileDescriptor

def __getattr__(name: str) -> Any: ...
'''


def _run(cmd: list[str], cwd: Path = REPO, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, text=True, capture_output=True)
    if check and proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    return proc


def our_protos() -> list[str]:
    """Our .proto files relative to proto/, sorted."""
    return sorted(p.relative_to(PROTO_DIR).as_posix() for p in PROTO_DIR.rglob("*.proto"))


def _site_root() -> Path:
    spec = importlib.util.find_spec("google.api.annotations_pb2")
    if spec is None or spec.origin is None:
        raise SystemExit("googleapis-common-protos is not installed")
    return Path(spec.origin).parents[2]


# -- dependencies ------------------------------------------------------------------------------------------
def _validate_fdp() -> bytes:
    from protovalidate._gen.buf.validate import validate_pb

    data: bytes = validate_pb.desc().proto.to_binary()
    return data


def _register_validate() -> None:
    """Add validate.proto to the default pool (as gen/buf/validate/validate_pb2.py does) for the renderer."""
    from google.protobuf import descriptor_pb2, descriptor_pool
    from google.protobuf.message_factory import GetMessageClassesForFiles

    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(VALIDATE_PROTO)
        return
    except KeyError:
        pass
    data = _validate_fdp()
    for dep in descriptor_pb2.FileDescriptorProto.FromString(data).dependency:
        importlib.import_module(dep.removesuffix(".proto").replace("/", ".") + "_pb2")
    pool.AddSerializedFile(data)
    GetMessageClassesForFiles([VALIDATE_PROTO], pool)


def _normalized(data: bytes) -> bytes:
    from google.protobuf import descriptor_pb2

    fdp = descriptor_pb2.FileDescriptorProto.FromString(data)
    fdp.ClearField("source_code_info")

    def strip(msgs: list[descriptor_pb2.DescriptorProto]) -> None:
        for m in msgs:
            for f in list(m.field) + list(m.extension):
                f.ClearField("json_name")
            strip(list(m.nested_type))

    strip(list(fdp.message_type))
    for ext in fdp.extension:
        ext.ClearField("json_name")
    return fdp.SerializeToString(deterministic=True)


def render_validate() -> str:
    """validate.proto rendered from protovalidate's embedded descriptor, verified to compile back to it."""
    from google.protobuf import descriptor_pb2, descriptor_pool

    _register_validate()
    data = _validate_fdp()
    text = render(descriptor_pb2.FileDescriptorProto.FromString(data), descriptor_pool.Default())
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / VALIDATE_PROTO
        src.parent.mkdir(parents=True)
        src.write_text(text)
        out = Path(tmp) / "v.binpb"
        _run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{tmp}",
                f"--descriptor_set_out={out}",
                VALIDATE_PROTO,
            ]
        )
        compiled = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0].SerializeToString()
    if _normalized(compiled) != _normalized(data):
        raise SystemExit(f"rendered {VALIDATE_PROTO} does not compile back to the embedded descriptor")
    return text


def dep_sources() -> dict[str, str]:
    """Import name -> source of every non-WKT proto our protos need (transitively), plus EXTRA_DEPS."""
    site = _site_root()
    sources: dict[str, str] = {}
    queue = list(EXTRA_DEPS)  # import names still to resolve
    for name in our_protos():
        queue += IMPORT_RE.findall((PROTO_DIR / name).read_text())
    seen: set[str] = set()
    while queue:
        imp = queue.pop()
        if imp in seen or imp.startswith("google/protobuf/"):  # buf and protoc bring the WKTs
            continue
        seen.add(imp)
        if imp == VALIDATE_PROTO:
            sources[imp] = render_validate()
        elif (PROTO_DIR / imp).exists():
            queue += IMPORT_RE.findall((PROTO_DIR / imp).read_text())
        elif (site / imp).exists():
            sources[imp] = (site / imp).read_text()
            queue += IMPORT_RE.findall(sources[imp])
        else:
            raise SystemExit(f"cannot resolve import {imp!r}")
    return sources


def _sync(dest: Path, files: dict[str, bytes]) -> None:
    """Make dest hold exactly files, rewriting only what differs (atomically per file).

    Several engineers and test runs share one checkout, so this never removes a directory that another
    process may be reading: unchanged files are left alone and changed ones are replaced with os.replace.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for rel, data in sorted(files.items()):
        target = dest / rel
        if target.is_file() and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    for path in sorted(dest.rglob("*"), reverse=True):
        rel = path.relative_to(dest).as_posix()
        if path.is_file() and rel not in files and "__pycache__" not in path.parts:
            path.unlink(missing_ok=True)
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def deps(dest: Path = DEPS_DIR) -> Path:
    """Materialize the dependency protos under dest."""
    _sync(dest, {name: text.encode() for name, text in dep_sources().items()})
    return dest


# -- generation --------------------------------------------------------------------------------------------
def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def generate(out: Path) -> None:
    """Generate everything gen/ holds into out (which must be empty or absent)."""
    deps()
    out.mkdir(parents=True, exist_ok=True)
    rel_out = os.path.relpath(out, REPO)
    bindir = Path(sys.executable).parent
    files = our_protos()
    _run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-Iproto",
            f"-I{DEPS_DIR.relative_to(REPO)}",
            f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
            f"--python_out={rel_out}",
            f"--grpc_python_out={rel_out}",
            f"--mypy_out=quiet:{rel_out}",
            f"--mypy_grpc_out=quiet:{rel_out}",
            *files,
        ]
    )
    has_service = {f for f in files if re.search(r"^service\s", (PROTO_DIR / f).read_text(), re.M)}
    for f in files:
        if f not in has_service:  # drop the empty gRPC modules of message-only files
            for suffix in ("_pb2_grpc.py", "_pb2_grpc.pyi"):
                (out / f.replace(".proto", suffix)).unlink(missing_ok=True)
    packages = {Path(f).parent for f in files}
    parents = {parent for pkg in packages for parent in pkg.parents if parent != Path(".")}
    for pkg in sorted(packages | parents):
        doc = f"Generated from proto/{pkg.as_posix()} by `make gen`; do not edit."
        _write(out / pkg / "__init__.py", f'"""{doc}"""\n')
    _write(out / "tronpay" / "py.typed", "")
    _write(out / "buf" / "__init__.py", '"""Package of the buf.validate runtime loader."""\n')
    _write(
        out / "buf" / "validate" / "__init__.py",
        '"""buf.validate loaded from the installed protovalidate."""\n',
    )
    _write(out / "buf" / "validate" / "validate_pb2.py", _SHIM)
    _write(out / "buf" / "validate" / "validate_pb2.pyi", _SHIM_PYI)
    _write(out / "buf" / "py.typed", "")
    descriptor = out / ENVOY_DESCRIPTOR
    descriptor.parent.mkdir(parents=True, exist_ok=True)
    _run([str(BUF), "build", "--as-file-descriptor-set", "--exclude-source-info", "-o", str(descriptor)])
    openapi(files, out / OPENAPI_DOCUMENT)


def openapi(files: list[str], dest: Path) -> None:
    """The OpenAPI 3 document of the REST API (every RPC with a google.api.http binding; descriptions from
    the proto comments), by the pinned protoc-gen-openapi, plus what the protos cannot say: the bearer
    token every path needs except the open network status."""
    from services.common import access  # here, not at the top: the lint/breaking checks run without it

    plugin = _run([str(OPENAPI_PLUGIN)]).stdout.strip()
    # The plugin wants a Go import path for every file; it uses them for nothing we keep.
    go_paths = [f"--openapi_opt=M{f}=tronpay.example/{f.removesuffix('.proto')}" for f in files]
    go_paths += [
        f"--openapi_opt=M{p.relative_to(DEPS_DIR).as_posix()}=tronpay.example/{p.stem}"
        for p in sorted(DEPS_DIR.rglob("*.proto"))
    ]
    with tempfile.TemporaryDirectory() as tmp:
        _run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                "-Iproto",
                f"-I{DEPS_DIR.relative_to(REPO)}",
                f"--plugin=protoc-gen-openapi={plugin}",
                f"--openapi_out={tmp}",
                "--openapi_opt=fq_schema_naming=true",
                "--openapi_opt=title=TRON payment cluster",
                "--openapi_opt=version=v1",
                "--openapi_opt=description=REST API of the cluster's edge (Envoy transcodes it to gRPC).",
                *go_paths,
                *files,
            ]
        )
        document = yaml.safe_load((Path(tmp) / "openapi.yaml").read_text())
    document.setdefault("components", {})["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    document["security"] = [{"bearer": []}]
    open_operations = {rpc.rpartition(".")[2].replace("/", "_") for rpc in access.OPEN}  # "Service_Method"
    for operations in document["paths"].values():
        for operation in operations.values():
            if operation["operationId"] in open_operations:
                operation["security"] = []  # the health check needs no token
    _write(dest, json.dumps(document, indent=1, ensure_ascii=False) + "\n")


def _tree(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def gen(out: Path) -> None:
    with tempfile.TemporaryDirectory(dir=BUILD_DIR if BUILD_DIR.exists() else None) as tmp:
        fresh = Path(tmp) / "gen"
        generate(fresh)
        _sync(out, {rel: (fresh / rel).read_bytes() for rel in _tree(fresh)})
    print(f"generated {len(_tree(out))} files into {os.path.relpath(out, REPO)}/")


def check() -> int:
    BUILD_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BUILD_DIR) as tmp:
        fresh = Path(tmp) / "gen"
        generate(fresh)
        want, have = _tree(fresh), _tree(GEN_DIR) if GEN_DIR.exists() else set()
        problems = [f"missing: gen/{p}" for p in sorted(want - have)]
        problems += [f"extra:   gen/{p}" for p in sorted(have - want)]
        problems += [
            f"stale:   gen/{p}"
            for p in sorted(want & have)
            if not filecmp.cmp(fresh / p, GEN_DIR / p, shallow=False)
        ]
    if problems:
        print(
            "gen/ is stale; run `make gen` and commit the result:\n  " + "\n  ".join(problems),
            file=sys.stderr,
        )
        return 1
    print(f"gen/ is fresh ({len(want)} files)")
    return 0


# -- buf checks --------------------------------------------------------------------------------------------
def lint() -> int:
    deps()
    rc = 0
    for cmd in ([str(BUF), "lint"], [str(BUF), "format", "proto", "-d", "--exit-code"]):
        proc = subprocess.run(cmd, cwd=REPO)
        print(f"{' '.join(cmd[1:])}: {'ok' if proc.returncode == 0 else f'FAILED ({proc.returncode})'}")
        rc = rc or proc.returncode
    return rc


def _git(*args: str, check: bool = True) -> str:
    return _run(["git", *args], check=check).stdout.strip()


def _has_commit(ref: str) -> bool:
    return _run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], check=False).returncode == 0


def ensure_history(need_main: bool = True) -> None:
    """Make the history buf breaking needs present: unshallow a shallow clone and fetch main if missing.

    A shallow clone looks as if its oldest commit added every file, so "the last contract change" and "its
    parent" cannot be found there; the check must never pass for that reason.
    """
    shallow = _git("rev-parse", "--is-shallow-repository") == "true"
    has_main = not need_main or any(_has_commit(r) for r in ("main", "origin/main"))
    if not shallow and has_main:
        return
    if "origin" not in _git("remote").split():
        if shallow:
            raise SystemExit(
                "buf breaking: this clone is shallow and has no remote origin to fetch its history from; "
                "run `git fetch --unshallow <remote>` (or clone without --depth), "
                "or set PROTO_BREAKING_AGAINST=<ref> to a commit this clone has"
            )
        return  # a local repository without main: breaking_base says so
    cmd = ["fetch", "--quiet", *(["--unshallow"] if shallow else []), "origin"]
    if not has_main:  # e.g. a single-branch clone of a branch: the merge base needs main
        cmd.append("+refs/heads/main:refs/remotes/origin/main")
    print(f"buf breaking: {'shallow clone' if shallow else 'no main branch'}; git {' '.join(cmd)}")
    proc = _run(["git", *cmd], check=False)
    if proc.returncode != 0:
        raise SystemExit(
            f"buf breaking: `git {' '.join(cmd)}` failed:\n{proc.stderr.strip()}\n"
            "fetch the history of main by hand or set PROTO_BREAKING_AGAINST=<ref>"
        )


def breaking_base() -> tuple[str | None, str]:
    """The commit to compare with, and why (the full history must be present: see ensure_history).

    - Working tree or index changes under proto/ or in buf.yaml: HEAD (the change is not committed yet).
    - HEAD not contained in main (a branch): the merge base with main.
    - Otherwise (HEAD is on main, e.g. CI on a clean clone of main): the parent of the last commit that
      changed a .proto file under proto/ or buf.yaml, so the latest contract change is checked against the
      contract before it, however many unrelated commits followed (proto/README.md edits do not count).
    None when there is no baseline: the contract change is the repository's root commit.
    """
    if _git("status", "--porcelain", "--", "proto", "buf.yaml"):
        return "HEAD", "uncommitted proto changes: comparing with HEAD"
    main = next((r for r in ("main", "origin/main") if _has_commit(r)), None)
    if main is None:
        print("buf breaking: no main branch; treating HEAD as main")
    elif _run(["git", "merge-base", "--is-ancestor", "HEAD", main], check=False).returncode != 0:
        return _git("merge-base", "HEAD", main), f"branch: comparing with the merge base with {main}"
    last = _git("log", "-1", "--format=%H", "--", ":(glob)proto/**/*.proto", "buf.yaml")
    if not last:
        return None, "no commit has proto/"
    if not _has_commit(f"{last}^"):
        return None, f"the last contract change {last[:12]} is the repository's first commit"
    return f"{last}^", f"on main: comparing the last contract change {last[:12]} with its parent"


def breaking(against: str | None) -> int:
    if not (against and _has_commit(against)):  # an explicit commit at hand needs no history
        ensure_history()
    base: str | None
    if against:
        if not _has_commit(against):
            raise SystemExit(f"buf breaking: {against!r} is not a commit in this clone (fetch it first)")
        base, why = against, f"comparing with {against}"
    else:
        base, why = breaking_base()
    # Only a complete history (ensure_history) makes "no baseline" true rather than an artefact of the clone.
    if base is None:
        print(f"buf breaking: NO BASELINE, nothing to compare with: {why}")
        return 0
    print(f"buf breaking: {why}")
    base = _git("rev-parse", f"{base}^{{commit}}")
    if not _git("ls-tree", "-d", base, "proto"):
        # Passing is honest only if proto/ has never existed up to base (it is being introduced now).
        ensure_history(need_main=False)
        if _git("log", "-1", "--format=%H", base, "--", "proto"):
            raise SystemExit(
                f"buf breaking: {base[:12]} has no proto/ but an earlier commit has; "
                "set PROTO_BREAKING_AGAINST=<ref> to the contract to compare with"
            )
        print(f"buf breaking: NO BASELINE, nothing to compare with: no commit up to {base[:12]} has proto/")
        return 0
    deps()
    BUILD_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BUILD_DIR, prefix="breaking-") as tmp:
        return _breaking_against(base, Path(tmp))


def _breaking_against(base: str, target: Path) -> int:
    paths = ["proto"] + (["buf.yaml"] if _git("ls-tree", base, "buf.yaml") else [])
    archive = subprocess.run(
        ["git", "archive", base, *paths], cwd=REPO, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    if not (target / "buf.yaml").exists():
        shutil.copyfile(REPO / "buf.yaml", target / "buf.yaml")
    shutil.copytree(DEPS_DIR, target / DEPS_DIR.relative_to(REPO))
    proc = subprocess.run([str(BUF), "breaking", ".", "--against", os.path.relpath(target, REPO)], cwd=REPO)
    print(
        f"buf breaking against {base[:12]}: {'ok' if proc.returncode == 0 else f'FAILED ({proc.returncode})'}"
    )
    return proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("deps", help="materialize dependency protos under .build/protodeps")
    p_gen = sub.add_parser("gen", help="regenerate gen/")
    p_gen.add_argument("--out", type=Path, default=GEN_DIR)
    sub.add_parser("check", help="fail if gen/ is stale")
    sub.add_parser("lint", help="buf lint and buf format check")
    p_br = sub.add_parser("breaking", help="buf breaking against main")
    p_br.add_argument("--against", help="git ref to compare with (default: see breaking_base)")
    args = parser.parse_args(argv)
    if args.cmd == "deps":
        print(f"dependency protos in {os.path.relpath(deps(), REPO)}/")
        return 0
    if args.cmd == "gen":
        gen(args.out.resolve())
        return 0
    if args.cmd == "check":
        return check()
    if args.cmd == "lint":
        return lint()
    return breaking(args.against)


if __name__ == "__main__":
    raise SystemExit(main())
