"""Chain parameters: mainnet values by default, overridable by a genesis file and at runtime.

`CHAIN_PARAMETERS` is what getchainparameters serves, in java-tron's order (names as java-tron prints them).
`DEVNET_PARAMETERS` are devnet-only knobs (never served by getchainparameters).
"""

from __future__ import annotations

from collections.abc import Mapping

# getchainparameters, in java-tron's order (Wallet.getChainParameters), mainnet values (tron-protocol §5.7).
CHAIN_PARAMETERS: tuple[tuple[str, int], ...] = (
    ("getMaintenanceTimeInterval", 21_600_000),
    ("getAccountUpgradeCost", 9_999_000_000),
    ("getCreateAccountFee", 100_000),
    ("getTransactionFee", 1_000),
    ("getAssetIssueFee", 1_024_000_000),
    ("getWitnessPayPerBlock", 16_000_000),
    ("getWitnessStandbyAllowance", 115_200_000_000),
    ("getCreateNewAccountFeeInSystemContract", 1_000_000),
    ("getCreateNewAccountBandwidthRate", 1),
    ("getAllowCreationOfContracts", 1),
    ("getRemoveThePowerOfTheGr", -1),
    ("getEnergyFee", 100),
    ("getExchangeCreateFee", 1_024_000_000),
    ("getMaxCpuTimeOfOneTx", 80),
    ("getAllowUpdateAccountName", 0),
    ("getAllowSameTokenName", 1),
    ("getAllowDelegateResource", 1),
    ("getTotalEnergyLimit", 180_000_000_000),
    ("getAllowTvmTransferTrc10", 1),
    ("getTotalEnergyCurrentLimit", 180_000_000_000),
    ("getAllowMultiSign", 1),
    ("getAllowAdaptiveEnergy", 0),
    ("getTotalEnergyTargetLimit", 6_250_000),
    ("getTotalEnergyAverageUsage", 0),
    ("getUpdateAccountPermissionFee", 100_000_000),
    ("getMultiSignFee", 1_000_000),
    ("getAllowAccountStateRoot", 0),
    ("getAllowProtoFilterNum", 0),
    ("getAllowTvmConstantinople", 1),
    ("getAllowTvmSolidity059", 1),
    ("getAllowTvmIstanbul", 1),
    ("getAllowShieldedTRC20Transaction", 1),
    ("getForbidTransferToContract", 0),
    ("getAdaptiveResourceLimitTargetRatio", 10),
    ("getAdaptiveResourceLimitMultiplier", 1000),
    ("getChangeDelegation", 1),
    ("getWitness127PayPerBlock", 160_000_000),
    ("getAllowMarketTransaction", 0),
    ("getMarketSellFee", 0),
    ("getMarketCancelFee", 0),
    ("getAllowPBFT", 0),
    ("getAllowTransactionFeePool", 0),
    ("getMaxFeeLimit", 15_000_000_000),
    ("getAllowOptimizeBlackHole", 1),
    ("getAllowNewResourceModel", 1),
    ("getAllowTvmFreeze", 1),
    ("getAllowTvmVote", 1),
    ("getAllowTvmLondon", 1),
    ("getAllowTvmCompatibleEvm", 0),
    ("getAllowAccountAssetOptimization", 0),
    ("getFreeNetLimit", 600),
    ("getTotalNetLimit", 43_200_000_000),
    ("getAllowHigherLimitForMaxCpuTimeOfOneTx", 1),
    ("getAllowAssetOptimization", 1),
    ("getAllowNewReward", 1),
    ("getMemoFee", 1_000_000),
    ("getAllowDelegateOptimization", 1),
    ("getUnfreezeDelayDays", 14),
    ("getAllowOptimizedReturnValueOfChainId", 1),
    ("getAllowDynamicEnergy", 1),
    ("getDynamicEnergyThreshold", 5_000_000_000),
    ("getDynamicEnergyIncreaseFactor", 2000),
    ("getDynamicEnergyMaxFactor", 34000),
    ("getAllowTvmShangHai", 1),
    ("getAllowCancelAllUnfreezeV2", 1),
    ("getMaxDelegateLockPeriod", 864_000),
    ("getAllowOldRewardOpt", 1),
    ("getAllowEnergyAdjustment", 1),
    ("getMaxCreateAccountTxSize", 1000),
    ("getAllowTvmCancun", 0),
)

# Devnet-only knobs. Times in ms. -1 means "derive from the mainnet parameter".
DEVNET_PARAMETERS: tuple[tuple[str, int], ...] = (
    # Unfreeze delay; -1 = getUnfreezeDelayDays * 86 400 000.
    ("devnetUnfreezeDelayMs", -1),
    # WithdrawBalance "less than 24 hours" window.
    ("devnetWithdrawIntervalMs", 86_400_000),
    # TotalSignNum: max signatures per transaction.
    ("devnetTotalSignNum", 5),
    # Brokerage (percent kept by a witness) for witnesses created at genesis.
    ("devnetBrokerage", 20),
    # Energy cap of constant calls (vm.maxEnergyLimitForConstant).
    ("devnetMaxEnergyLimitForConstant", 100_000_000),
    # Max lock_period default when 0 is given (blocks).
    ("devnetDefaultDelegateLockPeriod", 86_400),
)

# Constant facts of the protocol (not parameters in java-tron either).
MAX_UNFREEZE_TIMES = 32
MAX_VOTE_NUMBER = 30
TRX_PRECISION = 1_000_000
WINDOW_SLOTS = 28_800  # 24 h of 3 s slots: resource usage recovery window
MAX_TX_SIZE = 512_000  # TRANSACTION_MAX_BYTE_SIZE
MAX_RESULT_SIZE_IN_TX = 64
MAX_TIME_UNTIL_EXPIRATION_MS = 86_400_000
BLOCK_INTERVAL_MS = 3_000
ACTIVE_DEFAULT_OPERATIONS = bytes.fromhex("7fff1fc0033efb0f" + "00" * 24)
ENERGY_PRICE_HISTORY = "0:100"
BANDWIDTH_PRICE_HISTORY = "0:1000"


class Params:
    """Current parameter values. Attribute-style access by name: `params["getEnergyFee"]` or
    `params.energy_fee` for the few hot ones (kept as plain attributes for speed)."""

    def __init__(self, overrides: Mapping[str, int] | None = None) -> None:
        self._values: dict[str, int] = dict(CHAIN_PARAMETERS)
        self._values.update(DEVNET_PARAMETERS)
        self._history: dict[str, list[tuple[int, int]]] = {}
        if overrides:
            self.update(overrides)
        self._refresh()

    def __getitem__(self, name: str) -> int:
        return self._values[name]

    def update(self, values: Mapping[str, int], at_ms: int = 0) -> None:
        """Validate all, then apply all (KeyError unknown name, ValueError bad value)."""
        checked: dict[str, int] = {}
        for name, value in values.items():
            if name not in self._values:
                raise KeyError(name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer")
            if value < 0 and name not in ("getRemoveThePowerOfTheGr", "devnetUnfreezeDelayMs"):
                raise ValueError(f"{name} must be >= 0")
            checked[name] = value
        for name, value in checked.items():
            if name in ("getEnergyFee", "getTransactionFee", "getMemoFee") and value != self._values[name]:
                self._history.setdefault(name, []).append((at_ms, value))
            self._values[name] = value
        self._refresh()

    def _refresh(self) -> None:
        v = self._values
        self.energy_fee = v["getEnergyFee"]
        self.transaction_fee = v["getTransactionFee"]
        self.free_net_limit = v["getFreeNetLimit"]
        self.total_net_limit = v["getTotalNetLimit"]
        self.total_energy_limit = v["getTotalEnergyCurrentLimit"]
        self.create_account_fee = v["getCreateAccountFee"]
        self.create_new_account_fee_in_system_contract = v["getCreateNewAccountFeeInSystemContract"]
        self.create_new_account_bandwidth_rate = v["getCreateNewAccountBandwidthRate"]
        self.memo_fee = v["getMemoFee"]
        self.multi_sign_fee = v["getMultiSignFee"]
        self.update_account_permission_fee = v["getUpdateAccountPermissionFee"]
        self.max_fee_limit = v["getMaxFeeLimit"]
        self.total_sign_num = v["devnetTotalSignNum"]

    @property
    def unfreeze_delay_ms(self) -> int:
        ms = self._values["devnetUnfreezeDelayMs"]
        return ms if ms >= 0 else self._values["getUnfreezeDelayDays"] * 86_400_000

    def chain_parameters(self) -> list[tuple[str, int]]:
        return [(name, self._values[name]) for name, _ in CHAIN_PARAMETERS]

    def as_dict(self) -> dict[str, int]:
        return dict(self._values)

    def price_history(self, name: str) -> str:
        """getenergyprices / getbandwidthprices / getmemofee `prices` string: "0:<v0>,<ms>:<v>,…"."""
        base = {
            "getEnergyFee": ENERGY_PRICE_HISTORY,
            "getTransactionFee": BANDWIDTH_PRICE_HISTORY,
            "getMemoFee": "0:0",
        }[name]
        parts = [base]
        for at, value in self._history.get(name, []):
            parts.append(f"{at}:{value}")
        if not self._history.get(name) and not base.endswith(f":{self._values[name]}"):
            parts.append(f"1:{self._values[name]}")
        return ",".join(parts)
