"""Deterministic genesis: funded accounts, one witness, USDT-like token at TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t,
and the two payout routers (contracts/src/PayoutRouterV0.sol, PayoutRouterKYC.sol) at fixed addresses.

Keys come from a fixed seed: account i has private key sha256("tronpay-devnet-<i>"), the witness
sha256("tronpay-devnet-witness"). Account 0 is the faucet and the token owner (can blacklist, pause, issue).
The routers' role accounts have keys sha256("tronpay-devnet-payout-<role>") (PAYOUT_ROLE_KEYS) and hold TRX
like the funded accounts: payout_admin (admin of both routers, their deployer), payout_disburser,
payout_pauser (both routers) and payout_compliance_signer (PayoutRouterKYC). Each router holds
PAYOUT_ROUTER_FUNDS USDT and starts with PAYOUT_ROUTER_LIMITS.
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
ARTIFACTS = Path(__file__).resolve().parent.parent / "contracts" / "artifacts"
ARTIFACT = ARTIFACTS / "TetherToken.json"
TRANSFER_SELECTOR = bytes.fromhex("a9059cbb")
GENESIS_ENERGY = 1_000_000_000

# 0x41 ‖ keccak256("tronpay-devnet-payout-router-v0" / "-kyc")[12:]: fixed, documented, no key behind them.
PAYOUT_ROUTER_V0_ADDRESS = bytes.fromhex("414f0ab1997372c36fb3329d38cd2621d0d790db2e")  # THB9CEBzDL6Y…
PAYOUT_ROUTER_KYC_ADDRESS = bytes.fromhex("41470cb68adc557df048efb8ff9a09fac92cdfff7f")  # TGStCzpBLTz8…
PAYOUT_ROUTERS: dict[str, bytes] = {
    "PayoutRouterV0": PAYOUT_ROUTER_V0_ADDRESS,
    "PayoutRouterKYC": PAYOUT_ROUTER_KYC_ADDRESS,
}
PAYOUT_ROLE_KEYS: dict[str, bytes] = {
    name: crypto.sha256(f"tronpay-devnet-payout-{name.removeprefix('payout_').replace('_', '-')}".encode())
    for name in ("payout_admin", "payout_disburser", "payout_pauser", "payout_compliance_signer")
}
# Constructor limits (USDT base units): 100 000 USDT per payout, 10 000 000 USDT per UTC day, and batches
# of at most 100 payouts (PAYOUT_BATCH_SIZE's default).
PAYOUT_ROUTER_LIMITS = {
    "max_per_tx": 100_000 * 10**6,
    "max_per_day": 10_000_000 * 10**6,
    "max_batch_size": 100,
}
PAYOUT_ROUTER_FUNDS = 10_000_000 * 10**6  # USDT each router holds at genesis

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


def artifact(name: str) -> dict[str, Any]:
    return json.loads((ARTIFACTS / f"{name}.json").read_text())


def _abi_pb(abi: list[dict[str, Any]]) -> contract_pb2.SmartContract.ABI:
    return codec.message_from_json({"entrys": abi}, contract_pb2.SmartContract.ABI, False)


def _u256(x: int) -> bytes:
    return x.to_bytes(32, "big")


def _word(addr: bytes) -> bytes:
    """A 21-byte TRON address as an ABI word (the 20-byte TVM address, left-padded)."""
    return addr[1:].rjust(32, b"\0")


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
    roles = {name: crypto.address_from_private_key(key) for name, key in PAYOUT_ROLE_KEYS.items()}
    for addr in roles.values():
        balances.setdefault(addr, spec.account_balance)
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
    _deploy_payout_routers(world, addrs[0], roles, vm, block_ctx)


def _deploy(
    world: World,
    vm: Any,
    block_ctx: Any,
    *,
    name: str,
    address: bytes,
    deployer: bytes,
    constructor_args: bytes,
    tx_seed: bytes,
    energy_factor: int = 0,
) -> None:
    """Create contract `name` (its committed artifact) at `address` as if `deployer` had deployed it."""
    art = artifact(name)
    init = bytes.fromhex(art["bytecode"].removeprefix("0x")) + constructor_args
    tx_id = crypto.sha256(tx_seed)
    res = vm.create(
        world,
        block_ctx,
        origin=deployer[1:],
        address=address[1:],
        init_code=init,
        value=0,
        energy_limit=GENESIS_ENERGY,
        tx_id=tx_id,
    )
    if res.result != "SUCCESS":
        raise RuntimeError(f"genesis {name} deployment failed: {res.result} {res.message}")
    runtime = world.code(address[1:])
    sc = contract_pb2.SmartContract(
        origin_address=deployer,
        contract_address=address,
        bytecode=init,
        consume_user_resource_percent=100,
        name=name,
        origin_energy_limit=10_000_000,
        code_hash=crypto.keccak256(runtime),
        trx_hash=tx_id,
    )
    sc.abi.CopyFrom(_abi_pb(art["abi"]))
    world.put_contract(
        ContractState(address, deployer, sc.SerializeToString(), 100, 10_000_000, energy_factor)
    )
    acc = world.existing_account_for_update(address)  # the deployment created it
    acc.type = 2
    acc.account_name = name.encode()
    world.put_account(acc)


def _call(
    world: World, vm: Any, block_ctx: Any, caller: bytes, contract: bytes, data: bytes, what: str
) -> None:
    r = vm.call(
        world,
        block_ctx,
        origin=caller[1:],
        caller=caller[1:],
        contract=contract[1:],
        value=0,
        data=data,
        energy_limit=GENESIS_ENERGY,
        tx_id=crypto.sha256(b"genesis" + what.encode()),
    )
    if r.result != "SUCCESS":
        raise RuntimeError(f"genesis {what} failed: {r.result} {r.message}")


def _deploy_token(
    world: World, owner: bytes, grants: dict[bytes, int], vm: Any, block_ctx: Any, energy_factor: int = 0
) -> None:
    supply = sum(grants.values()) * 10 + 10**15
    _deploy(
        world,
        vm,
        block_ctx,
        name="TetherToken",
        address=USDT_ADDRESS,
        deployer=owner,
        constructor_args=_word(owner) + _u256(supply),
        tx_seed=b"tronpay-devnet-genesis-usdt",
        energy_factor=energy_factor,
    )
    for addr, amount in grants.items():
        _usdt_transfer(world, vm, block_ctx, owner, addr, amount)


def _usdt_transfer(world: World, vm: Any, block_ctx: Any, owner: bytes, to: bytes, amount: int) -> None:
    data = TRANSFER_SELECTOR + _word(to) + _u256(amount)
    _call(world, vm, block_ctx, owner, USDT_ADDRESS, data, f"USDT grant to {crypto.to_base58(to)}")
    if not world.exists(to[1:]) or world.account(to) is None:
        world.put_account(new_account(to, block_ctx.timestamp))


def _deploy_payout_routers(
    world: World, usdt_owner: bytes, roles: dict[str, bytes], vm: Any, block_ctx: Any
) -> None:
    """Both routers, deployed by payout_admin, roles granted, funded with USDT by the token owner."""
    admin = roles["payout_admin"]
    limits = PAYOUT_ROUTER_LIMITS
    args = (
        _word(USDT_ADDRESS)
        + _word(admin)
        + _u256(limits["max_per_tx"])
        + _u256(limits["max_per_day"])
        + _u256(limits["max_batch_size"])
    )
    grants = {
        "PayoutRouterV0": {"DISBURSER_ROLE": "payout_disburser", "PAUSER_ROLE": "payout_pauser"},
        "PayoutRouterKYC": {
            "DISBURSER_ROLE": "payout_disburser",
            "PAUSER_ROLE": "payout_pauser",
            "COMPLIANCE_SIGNER_ROLE": "payout_compliance_signer",
        },
    }
    for name, address in PAYOUT_ROUTERS.items():
        _deploy(
            world,
            vm,
            block_ctx,
            name=name,
            address=address,
            deployer=admin,
            constructor_args=args,
            tx_seed=f"tronpay-devnet-genesis-{name}".encode(),
        )
        grant_role = bytes.fromhex(artifact(name)["methodIdentifiers"]["grantRole(bytes32,address)"])
        for role, holder in grants[name].items():
            data = grant_role + crypto.keccak256(role.encode()) + _word(roles[holder])
            _call(world, vm, block_ctx, admin, address, data, f"{name}.grantRole({role}, {holder})")
        _usdt_transfer(world, vm, block_ctx, usdt_owner, address, PAYOUT_ROUTER_FUNDS)
