"""pytest plugin: a real FerretDB (SQLite backend) on a free loopback port, one per test session.

Fixtures:
  ferretdb     (session) -> FerretDB: .uri, .port, .data_dir, .db_name() for a fresh database name.
Helpers: start_ferretdb(data_dir, port=None, args=()), stop_ferretdb(db), restart_ferretdb(db) for tests
that need their own server (outages, restarts).
  mongo_db_name (function) -> str: a database name no other test uses.
The binary comes from `scripts/ferretdb-build.sh` (built into the user cache on first use). It serialises
write commands per database so that conditional single-document updates are atomic as on MongoDB
(scripts/ferretdb/serialize.go; tests/services/test_mongo_atomicity.py checks it).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.net import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "ferretdb-build.sh"


def ferretdb_binary() -> Path:
    """Path of the cached FerretDB binary, building it when absent."""
    out = subprocess.run([str(BUILD_SCRIPT)], check=True, capture_output=True, text=True, timeout=900)
    return Path(out.stdout.strip().splitlines()[-1])


@dataclass
class FerretDB:
    """A running FerretDB process."""

    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def uri(self) -> str:
        """Connection string for pymongo."""
        return f"mongodb://127.0.0.1:{self.port}/"

    @staticmethod
    def db_name(prefix: str = "t") -> str:
        """A database name unique to the caller (each database is one SQLite file)."""
        return f"{prefix}_{uuid.uuid4().hex[:12]}"


def start_ferretdb(data_dir: Path, port: int | None = None, args: Sequence[str] = ()) -> FerretDB:
    """Start FerretDB on a free (or given) port, SQLite files under data_dir; wait until it listens.

    args: extra flags, e.g. ["-serialize-writes=false"] to measure the unserialised server.
    """
    binary = ferretdb_binary()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_path = data_dir.parent / f"ferretdb-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(binary), "-listen-addr", f"127.0.0.1:{port}", "-handler", "sqlite",
             "-sqlite-url", f"file:{data_dir}/", "-log-level", "error", *args],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "DO_NOT_TRACK": "1"},
        )  # fmt: skip
    try:
        wait_for_port(port, timeout=30)
    except TimeoutError:
        proc.kill()
        raise RuntimeError(f"FerretDB did not start; log: {log_path.read_text()[-2000:]}") from None
    return FerretDB(port=port, data_dir=data_dir, process=proc, log_path=log_path)


def stop_ferretdb(db: FerretDB) -> None:
    """Stop FerretDB (SIGTERM, then SIGKILL after 10 s)."""
    db.process.terminate()
    try:
        db.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        db.process.kill()
        db.process.wait(timeout=5)


def restart_ferretdb(db: FerretDB) -> FerretDB:
    """Stop db and start it again on the same port and data (clients reconnect by themselves)."""
    stop_ferretdb(db)
    return start_ferretdb(db.data_dir, db.port)


@pytest.fixture(scope="session")
def ferretdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FerretDB]:
    """One FerretDB for the whole session; tests isolate themselves by database name."""
    db = start_ferretdb(tmp_path_factory.mktemp("ferretdb") / "data")
    yield db
    stop_ferretdb(db)


@pytest.fixture
def mongo_db_name(ferretdb: FerretDB) -> str:
    """A database name no other test uses."""
    return ferretdb.db_name()
