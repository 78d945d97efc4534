"""Deterministic genesis: funded accounts, one witness, USDT-like token at TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t.

Keys come from a fixed seed: account i has private key sha256("tronpay-devnet-<i>"), the witness
sha256("tronpay-devnet-witness"). Account 0 is the faucet and the token owner (can blacklist, pause, issue).
A genesis JSON file may override:
  {"timestamp": <ms>, "funded_accounts": 10, "account_balance": <sun>, "account_usdt": <base units>,
   "faucet_balance": <sun>, "accounts": [{"address": "T…"|"41…", "balance": <sun>, "usdt": <units>}],
   "params": {"getEnergyFee": 100, "devnetUnfreezeDelayMs": 9000, …},
   "profile": "devnet"|"mainnet", "total_energy_weight": <TRX>, "total_net_weight": <TRX>,
   "usdt_energy_factor": <0..34000>}

Profiles: "devnet" (default) shortens what makes tests slow or surprising and "mainnet" keeps mainnet's
values. The differences, each also settable on its own:
  devnetUnfreezeDelayMs      9 000 ms (three blocks)        | -1 = getUnfreezeDelayDays (14 days)
  getMaintenanceTimeInterval 60 000 ms                       | 21 600 000 (6 h)
  total_energy_weight        0 (first staker gets all)       | 19 000 000 000 TRX staked by the rest of the
  total_net_weight           0                               | 43 000 000 000 network (approximate mainnet
                                                             |   yields: ~9.5 energy and ~1 bandwidth per TRX)
  usdt_energy_factor         0 (USDT transfer ≈ 13k/28k)     | 34 000 = 4.4 times (≈ 58k/124k, mainnet USDT)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devnet import codec, crypto
from devnet.actuators import new_account
from devnet.pb import contract_pb2
from devnet.state import ContractState, WitnessState, World

USDT_ADDRESS = bytes.fromhex("41a614f803b6fd780986a42c78ec9c7f77e6ded13c")
ARTIFACT = Path(__file__).resolve().parent.parent / "contracts" / "artifacts" / "TetherToken.json"
TRANSFER_SELECTOR = bytes.fromhex("a9059cbb")
GENESIS_ENERGY = 1_000_000_000

# Devnet defaults on top of mainnet values (a genesis file's "params" and NodeConfig.params win).
DEVNET_DEFAULT_PARAMS: dict[str, int] = {
    "devnetUnfreezeDelayMs": 9_000,  # unfreezes mature after three blocks
    "getMaintenanceTimeInterval": 60_000,  # witness vote tally every minute
}

# Genesis settings per profile (see the module docstring); a genesis file's own keys win.
PROFILES: dict[str, dict[str, Any]] = {
    "devnet": {
        "params": DEVNET_DEFAULT_PARAMS,
        "total_energy_weight": 0,
        "total_net_weight": 0,
        "usdt_energy_factor": 0,
    },
    "mainnet": {
        "params": {},
        "total_energy_weight": 19_000_000_000,
        "total_net_weight": 43_000_000_000,
        "usdt_energy_factor": 34_000,
    },
}


def account_key(i: int) -> bytes:
    return crypto.sha256(f"tronpay-devnet-{i}".encode())


WITNESS_KEY = crypto.sha256(b"tronpay-devnet-witness")


@dataclass
class GenesisSpec:
    timestamp: int
    funded_accounts: int = 10
    account_balance: int = 1_000_000 * 1_000_000  # 1 M TRX each
    account_usdt: int = 1_000_000 * 1_000_000  # 1 M USDT each
    faucet_balance: int = 10_000_000_000 * 1_000_000  # 10 G TRX
    extra: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, int] = field(default_factory=dict)
    witness_key: bytes = WITNESS_KEY
    profile: str = "devnet"
    total_energy_weight: int = 0  # whole TRX staked for energy / bandwidth by accounts outside the devnet
    total_net_weight: int = 0
    usdt_energy_factor: int = 0  # USDT's dynamic-energy factor (scale 10 000)

    @classmethod
    def load(cls, path: Path | None, now_ms: int | None = None, profile: str | None = None) -> GenesisSpec:
        """The genesis file (or none) over its profile; `profile` (e.g. --mainnet) overrides the file's."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        data: dict[str, Any] = json.loads(Path(path).read_text()) if path else {}
        ts = int(data.get("timestamp", now - now % 3000))
        spec = cls(timestamp=ts)
        spec.profile = str(profile or data.get("profile", "devnet"))
        if spec.profile not in PROFILES:
            raise ValueError(f"unknown genesis profile {spec.profile!r} (known: {', '.join(PROFILES)})")
        base = PROFILES[spec.profile]
        for key in ("total_energy_weight", "total_net_weight", "usdt_energy_factor"):
            setattr(spec, key, int(data.get(key, base[key])))
        for key in ("funded_accounts", "account_balance", "account_usdt", "faucet_balance"):
            if key in data:
                setattr(spec, key, int(data[key]))
        spec.extra = list(data.get("accounts", []))
        spec.params = {**base["params"], **{k: int(v) for k, v in data.get("params", {}).items()}}
        return spec

    def account_keys(self) -> list[bytes]:
        return [account_key(i) for i in range(max(self.funded_accounts, 1))]


def token_artifact() -> dict[str, Any]:
    return json.loads(ARTIFACT.read_text())


def _abi_pb(abi: list[dict[str, Any]]) -> contract_pb2.SmartContract.ABI:
    return codec.message_from_json({"entrys": abi}, contract_pb2.SmartContract.ABI, False)


def _u256(x: int) -> bytes:
    return x.to_bytes(32, "big")


def build_state(world: World, spec: GenesisSpec, vm: Any, block_ctx: Any) -> None:
    """Write the genesis accounts, witness and token into `world` (an overlay over an empty store)."""
    ts = spec.timestamp
    world.set_glob("block_time", ts)
    world.set_glob("total_energy_weight", spec.total_energy_weight)
    world.set_glob("total_net_weight", spec.total_net_weight)
    keys = spec.account_keys()
    addrs = [crypto.address_from_private_key(k) for k in keys]
    witness = crypto.address_from_private_key(spec.witness_key)
    balances: dict[bytes, int] = {a: spec.account_balance for a in addrs}
    balances[addrs[0]] = spec.faucet_balance
    balances.setdefault(witness, spec.account_balance)
    usdt: dict[bytes, int] = {a: spec.account_usdt for a in addrs[1:]}
    for entry in spec.extra:
        addr = crypto.parse_address(str(entry["address"]))
        balances[addr] = int(entry.get("balance", 0))
        if int(entry.get("usdt", 0)):
            usdt[addr] = int(entry["usdt"])
    for addr, bal in balances.items():
        acc = new_account(addr, ts)
        acc.balance = bal
        if addr == witness:
            acc.is_witness = True
            acc.account_name = b"devnet-witness"
        world.put_account(acc)
    brokerage = spec.params.get("devnetBrokerage", 20)
    world.put_witness(WitnessState(address=witness, url="http://devnet.local", brokerage=brokerage))
    _deploy_token(world, addrs[0], usdt, vm, block_ctx, spec.usdt_energy_factor)


def _deploy_token(
    world: World, owner: bytes, grants: dict[bytes, int], vm: Any, block_ctx: Any, energy_factor: int = 0
) -> None:
    art = token_artifact()
    supply = sum(grants.values()) * 10 + 10**15
    bytecode = bytes.fromhex(art["bytecode"].removeprefix("0x"))
    init = bytecode + _u256(int.from_bytes(owner[1:], "big")) + _u256(supply)
    tx_id = crypto.sha256(b"tronpay-devnet-genesis-usdt")
    res = vm.create(
        world,
        block_ctx,
        origin=owner[1:],
        address=USDT_ADDRESS[1:],
        init_code=init,
        value=0,
        energy_limit=GENESIS_ENERGY,
        tx_id=tx_id,
    )
    if res.result != "SUCCESS":
        raise RuntimeError(f"genesis token deployment failed: {res.result} {res.message}")
    runtime = world.code(USDT_ADDRESS[1:])
    sc = contract_pb2.SmartContract(
        origin_address=owner,
        contract_address=USDT_ADDRESS,
        bytecode=init,
        consume_user_resource_percent=100,
        name="TetherToken",
        origin_energy_limit=10_000_000,
        code_hash=crypto.keccak256(runtime),
        trx_hash=tx_id,
    )
    sc.abi.CopyFrom(_abi_pb(art["abi"]))
    world.put_contract(
        ContractState(USDT_ADDRESS, owner, sc.SerializeToString(), 100, 10_000_000, energy_factor)
    )
    acc = world.existing_account_for_update(USDT_ADDRESS)  # the deployment created it
    acc.type = 2
    acc.account_name = b"TetherToken"
    world.put_account(acc)
    for addr, amount in grants.items():
        data = TRANSFER_SELECTOR + _u256(int.from_bytes(addr[1:], "big")) + _u256(amount)
        r = vm.call(
            world,
            block_ctx,
            origin=owner[1:],
            caller=owner[1:],
            contract=USDT_ADDRESS[1:],
            value=0,
            data=data,
            energy_limit=GENESIS_ENERGY,
            tx_id=crypto.sha256(b"genesis" + addr),
        )
        if r.result != "SUCCESS":
            raise RuntimeError(f"genesis USDT grant failed: {r.result} {r.message}")
        if not world.exists(addr[1:]) or world.account(addr) is None:
            world.put_account(new_account(addr, block_ctx.timestamp))
