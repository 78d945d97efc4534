"""pytest plugin: a real devnet (`python -m devnet`) on a free loopback port with a temp data dir.

Fixtures:
  devnet          session-wide node producing blocks every 0.5 s (solid = head - 2); share it, use fresh
                  accounts (`devnet.new_account()` + `devnet.faucet(...)`) so tests do not interfere.
  devnet_manual   session-wide node producing blocks only on `mine()` (solid = head - 3).
  devnet_factory  start extra nodes with other settings (manual blocks, faults, forks); stopped at the end.

Helper API (`Devnet`): url, port, data_dir, accounts (the accounts JSON), witness, funded (list of funded
accounts), usdt (base58), post/get, status(), mine(n), pause(), resume(), faucet(addr, trx=, usdt=),
set_params(**values), set_faults(**cfg), clear_faults(), fork(k), wait_for_tx(txid, solid=False),
wait_for_block(n, solid=False), new_account(), stop(), restart(); locally signed transactions:
ref_block(), make_tx(type, value, ref), transfer_tx(owner, to_hex, amount),
trc20_transfer_tx(owner, token_hex, to_hex, amount), sign(tx, *keys), broadcast(tx).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devnet import crypto
from tests.harness.net import free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 90.0


class DevnetError(RuntimeError):
    pass


class Devnet:
    """A running `python -m devnet` subprocess and a small synchronous client for it."""

    def __init__(
        self,
        data_dir: Path,
        *,
        manual: bool = False,
        block_time: float = 0.5,
        solidity_lag: int = 2,
        genesis: Path | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.manual = manual
        self.block_time = block_time
        self.solidity_lag = solidity_lag
        self.genesis = genesis
        self.extra_args = list(extra_args or [])
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.accounts_file = data_dir / "accounts.json"
        self.log_file = data_dir / "devnet.log"
        self.accounts: dict[str, Any] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=self.url, timeout=30.0)

    # ---- lifecycle -----------------------------------------------------------------------------
    def command(self) -> list[str]:
        cmd = [
            sys.executable, "-m", "devnet",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--data-dir", str(self.data_dir / "chain"),
            "--accounts-file", str(self.accounts_file),
            "--block-time", str(self.block_time),
            "--solidity-lag", str(self.solidity_lag),
        ]  # fmt: skip
        if self.manual:
            cmd.append("--manual")
        if self.genesis is not None:
            cmd += ["--genesis", str(self.genesis)]
        return cmd + self.extra_args

    def start(self) -> Devnet:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.accounts_file.unlink(missing_ok=True)
        log = open(self.log_file, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(self.command(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DevnetError(f"devnet exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.accounts_file.exists():
                try:
                    self.http.get("/devnet/status").raise_for_status()
                    self.accounts = json.loads(self.accounts_file.read_text())
                    return self
                except (httpx.HTTPError, ValueError):
                    pass
            time.sleep(0.1)
        self.stop()
        raise DevnetError(f"devnet did not start within {START_TIMEOUT}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (graceful), SIGKILL after `timeout`; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        code = self.proc.returncode
        self.proc = None
        return code

    def restart(self) -> Devnet:
        """Stop and start again on the same port and data dir (state must survive)."""
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        self.http.close()

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    # ---- accounts ------------------------------------------------------------------------------
    @property
    def witness(self) -> dict[str, str]:
        return self.accounts["witness"]

    @property
    def funded(self) -> list[dict[str, str]]:
        """Funded genesis accounts: {"address" (base58), "hex", "private_key" (hex)}."""
        return self.accounts["accounts"]

    @property
    def usdt(self) -> str:
        return self.accounts["tokens"]["USDT"]

    @property
    def usdt_hex(self) -> str:
        return crypto.from_base58(self.usdt).hex()

    @staticmethod
    def new_account() -> dict[str, str]:
        """A fresh random key pair (not on chain until something is sent to it)."""
        priv = secrets.token_bytes(32)
        addr = crypto.address_from_private_key(priv)
        return {"address": crypto.to_base58(addr), "hex": addr.hex(), "private_key": priv.hex()}

    # ---- HTTP ----------------------------------------------------------------------------------
    def post(self, path: str, body: Any = None) -> Any:
        resp = self.http.post("/" + path.lstrip("/"), json=body if body is not None else {})
        resp.raise_for_status()
        return resp.json()

    def get(self, path: str, **params: Any) -> Any:
        resp = self.http.get("/" + path.lstrip("/"), params=params)
        resp.raise_for_status()
        return resp.json()

    def _control(self, path: str, body: Any = None) -> Any:
        resp = self.http.post(f"/devnet/{path}", json=body if body is not None else {})
        if resp.status_code != 200:
            raise DevnetError(f"/devnet/{path}: {resp.status_code} {resp.text}")
        return resp.json()

    def status(self) -> dict[str, Any]:
        return self.get("devnet/status")

    def mine(self, n: int = 1, spacing_ms: int | None = None) -> dict[str, Any]:
        """Produce n blocks now; spacing_ms moves chain time that much per block (time travel)."""
        body: dict[str, Any] = {"blocks": n}
        if spacing_ms is not None:
            body["spacing_ms"] = spacing_ms
        return self._control("mine", body)

    def pause(self) -> dict[str, Any]:
        return self._control("pause")

    def resume(self) -> dict[str, Any]:
        return self._control("resume")

    def faucet(self, address: str, trx: int = 0, usdt: int = 0, mine: bool = False) -> list[str]:
        return self._control("faucet", {"address": address, "trx": trx, "usdt": usdt, "mine": mine})["txids"]

    def set_params(self, **values: int) -> dict[str, int]:
        return self._control("params", values)["params"]

    def set_faults(self, **cfg: Any) -> dict[str, Any]:
        return self._control("faults", cfg)

    def clear_faults(self) -> dict[str, Any]:
        resp = self.http.delete("/devnet/faults")
        resp.raise_for_status()
        return resp.json()

    def fork(self, k: int, reinclude: bool = False) -> dict[str, Any]:
        return self._control("fork", {"blocks": k, "reinclude": reinclude})

    # ---- waiting -------------------------------------------------------------------------------
    def wait_for_block(self, n: int, solid: bool = False, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until head (or solid) >= n; in manual mode mines the missing blocks instead."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            have = st["solid"] if solid else st["head"]
            if have >= n:
                return st
            if st["paused"]:
                self.mine(n - have)
                continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"block {n} ({'solid' if solid else 'head'}) not reached: {st}")
            time.sleep(min(0.1, self.block_time / 2))

    def wait_for_tx(self, txid: str, solid: bool = False, timeout: float = 30.0) -> dict[str, Any]:
        """TransactionInfo once the tx is included (solid=True: solidified); mines in manual mode."""
        prefix = "walletsolidity" if solid else "wallet"
        deadline = time.monotonic() + timeout
        while True:
            info = self.post(f"{prefix}/gettransactioninfobyid", {"value": txid})
            if info:
                return info
            if time.monotonic() > deadline:
                raise TimeoutError(f"tx {txid} not {'solid' if solid else 'included'} after {timeout}s")
            st = self.status()
            if st["paused"]:
                self.mine(1 + (self.solidity_lag if solid else 0))
            else:
                time.sleep(min(0.1, self.block_time / 2))

    # ---- transactions built and signed locally (TronWeb style: head block as reference) ---------
    def ref_block(self) -> dict[str, Any]:
        """ref_block_bytes / ref_block_hash / timestamps from the head block (POST wallet/getblock)."""
        head = self.post("wallet/getblock", {"detail": False})
        ts = int(head["block_header"]["raw_data"]["timestamp"])
        now = int(time.time() * 1000)
        return {
            "ref_block_bytes": head["blockID"][12:16],
            "ref_block_hash": head["blockID"][16:32],
            "timestamp": now,
            "expiration": max(now, ts) + 60_000,
        }

    @staticmethod
    def make_tx(contract_type: str, value: dict[str, Any], ref: dict[str, Any], **raw: Any) -> dict[str, Any]:
        """Unsigned visible=false transaction JSON (hex addresses) for one contract."""
        contract = {
            "parameter": {"value": value, "type_url": f"type.googleapis.com/protocol.{contract_type}"},
            "type": contract_type,
        }
        return {"raw_data": {"contract": [contract], **ref, **raw}, "signature": []}

    def transfer_tx(self, owner: dict[str, str], to_hex: str, amount: int, ref: dict | None = None) -> dict:
        value = {"owner_address": owner["hex"], "to_address": to_hex, "amount": amount}
        return self.sign(
            self.make_tx("TransferContract", value, ref or self.ref_block()), owner["private_key"]
        )

    def trc20_transfer_tx(
        self,
        owner: dict[str, str],
        token_hex: str,
        to_hex: str,
        amount: int,
        fee_limit: int = 100_000_000,
        ref: dict | None = None,
    ) -> dict:
        data = "a9059cbb" + to_hex[2:].rjust(64, "0") + format(amount, "064x")
        value = {"owner_address": owner["hex"], "contract_address": token_hex, "data": data}
        tx = self.make_tx("TriggerSmartContract", value, ref or self.ref_block(), fee_limit=fee_limit)
        return self.sign(tx, owner["private_key"])

    def sign(self, tx: dict[str, Any], *private_keys: str) -> dict[str, Any]:
        """Append one signature per key (v in {0,1}) over the txID the devnet computes (getsignweight),
        the way tronpy learns it."""
        txid = bytes.fromhex(self.post("wallet/getsignweight", tx)["transaction"]["transaction"]["txID"])
        tx["txID"] = txid.hex()
        tx.setdefault("signature", [])
        tx["signature"] += [crypto.sign(txid, bytes.fromhex(k)).hex() for k in private_keys]
        return tx

    def broadcast(self, tx: dict[str, Any]) -> dict[str, Any]:
        return self.post("wallet/broadcasttransaction", tx)


DevnetFactory = Callable[..., Devnet]


@pytest.fixture(scope="session")
def devnet_factory() -> Iterator[DevnetFactory]:
    """Start extra devnets: `devnet_factory(manual=True, solidity_lag=3, extra_args=[...])`."""
    started: list[Devnet] = []
    root = Path(tempfile.mkdtemp(prefix="devnet-"))

    def make(**kwargs: Any) -> Devnet:
        d = Devnet(root / f"node{len(started)}", **kwargs)
        started.append(d)
        return d.start()

    yield make
    for d in started:
        d.close()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def devnet(devnet_factory: DevnetFactory) -> Devnet:
    """The shared devnet: blocks every 0.5 s, solid = head - 2."""
    return devnet_factory()


@pytest.fixture(scope="session")
def devnet_manual(devnet_factory: DevnetFactory) -> Devnet:
    """A second shared devnet that only produces blocks on `mine()` (solid = head - 3)."""
    return devnet_factory(manual=True, solidity_lag=3)
