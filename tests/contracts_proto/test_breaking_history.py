"""proto-breaking never passes because history is missing: a shallow clone is deepened from origin first,
one without a remote fails saying what to do, and "no baseline" is said only when no earlier proto/ exists.

The clones run the working tree's tools/ (copied in), not the committed ones, so the code under test is
the code being changed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _prepare(path: Path) -> Path:
    """Put the working tree's tools/ and the shared node_modules (buf) into a clone."""
    for name in ("protogen.py", "proto_render.py"):
        shutil.copyfile(REPO / "tools" / name, path / "tools" / name)
    (path / "node_modules").symlink_to(REPO / "node_modules")
    return path


def _breaking(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "tools/protogen.py", "breaking"], cwd=path, capture_output=True, text=True
    )


def _shallow_clone(tmp_path: Path) -> Path:
    path = tmp_path / "shallow"
    # file:// because git ignores --depth for plain local paths.
    _git(tmp_path, "clone", "-q", "--depth", "1", REPO.as_uri(), str(path))
    assert _git(path, "rev-parse", "--is-shallow-repository") == "true"
    return _prepare(path)


def test_shallow_clone_is_deepened_from_origin_and_compared(tmp_path: Path) -> None:
    path = _shallow_clone(tmp_path)
    proc = _breaking(path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "shallow clone; git fetch --quiet --unshallow origin" in out
    assert "buf breaking against " in out and ": ok" in out and "NO BASELINE" not in out
    assert _git(path, "rev-parse", "--is-shallow-repository") == "false"


def test_shallow_clone_without_a_remote_fails(tmp_path: Path) -> None:
    path = _shallow_clone(tmp_path)
    _git(path, "remote", "remove", "origin")
    proc = _breaking(path)
    assert proc.returncode != 0, proc.stdout
    assert "shallow and has no remote origin" in proc.stderr and "git fetch --unshallow" in proc.stderr


def test_no_baseline_only_when_no_earlier_commit_has_proto(tmp_path: Path) -> None:
    path = tmp_path / "fresh"
    path.mkdir()
    archive = subprocess.run(
        ["git", "archive", "HEAD", "proto", "buf.yaml", "tools"], cwd=REPO, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(path)], input=archive, check=True)
    _prepare(path)
    (path / ".gitignore").write_text("node_modules\n")
    _git(path, "init", "-q", "-b", "main")
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    _git(path, *ident, "commit", "-q", "--allow-empty", "-m", "before the contract")
    _git(path, "add", "-A")
    _git(path, *ident, "commit", "-q", "-m", "introduce proto/")
    proc = _breaking(path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "NO BASELINE, nothing to compare with: no commit up to" in proc.stdout

    # A later contract change is compared with the commit that introduced proto/, which now is a baseline.
    proto = path / "proto/tronpay/usdt_manager/v1/usdt_manager.proto"
    proto.write_text(proto.read_text().replace("int64 amount = 5 [(buf.validate.field).int64.gt = 0];", ""))
    _git(path, *ident, "commit", "-q", "-am", "drop a field")
    proc = _breaking(path)
    assert proc.returncode != 0 and "NO BASELINE" not in proc.stdout, proc.stdout
    assert "with its parent" in proc.stdout
