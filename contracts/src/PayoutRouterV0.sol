// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {PayoutRouterBase} from "./PayoutRouterBase.sol";

/// @title PayoutRouterV0: USDT payouts to end users, singly or in batches, each payout id paid at most once.
/// @notice The disburser pays from the router's own token balance within `maxPerTx` per payout and
/// `maxPerDay` per UTC day; the pauser stops it; the admin manages roles and limits. A batch carries at most
/// `maxBatchSize` payouts; a failing payout is reported (`PayoutFailed`) and the others are still paid.
contract PayoutRouterV0 is PayoutRouterBase {
    /// @param token_ The payout token (USDT).
    /// @param admin Receives DEFAULT_ADMIN_ROLE.
    /// @param maxPerTx_ Largest single payout (base units).
    /// @param maxPerDay_ Largest sum per UTC day (base units).
    /// @param maxBatchSize_ Most payouts per batch call.
    constructor(address token_, address admin, uint256 maxPerTx_, uint256 maxPerDay_, uint256 maxBatchSize_)
        PayoutRouterBase(token_, admin, maxPerTx_, maxPerDay_, maxBatchSize_)
    {}

    /// @notice Disburser only, not paused: pays `amount` to `to` once for `payoutId`. Emits Paid, or
    /// AlreadyPaid (nothing paid), or PayoutFailed(reason); none of these revert.
    /// @param payoutId The payout's unique id (e.g. a hash of the service's payout id).
    function disburse(bytes32 payoutId, address to, uint256 amount) external onlyRole(DISBURSER_ROLE) whenNotPaused {
        Run memory run = _openRun();
        _pay(payoutId, to, amount, Failure.None, run);
        _closeRun(run);
    }

    /// @notice Disburser only, not paused: pays up to `maxBatchSize` payouts in one transaction, each once.
    /// Per payout emits Paid, AlreadyPaid or PayoutFailed(reason); then BatchDisbursed with the counts.
    /// Reverts (paying nothing) only for an empty batch, more than `maxBatchSize` payouts or unequal lengths.
    /// @param batchId The service's id of this batch (only echoed in BatchDisbursed).
    /// @param payoutIds One unique id per payout.
    /// @param payouts Per payout `amount << 160 | uint160(recipient)`: amount (base units, < 2^96) in the
    /// high 96 bits, the 20-byte TVM address (TRON address without its 0x41 prefix) in the low 160 bits.
    /// One word per payout keeps calldata, and so bandwidth, to 64 bytes per recipient.
    function disburseBatch(bytes32 batchId, bytes32[] calldata payoutIds, uint256[] calldata payouts)
        external
        onlyRole(DISBURSER_ROLE)
        whenNotPaused
    {
        uint256 size = payoutIds.length;
        _checkBatch(size, payouts.length);
        Run memory run = _openRun();
        for (uint256 i; i < size; ++i) {
            uint256 packed = payouts[i];
            _pay(payoutIds[i], address(uint160(packed)), packed >> 160, Failure.None, run);
        }
        _closeRun(run);
        emit BatchDisbursed(batchId, run.paid, run.failed, run.alreadyPaid, run.amountPaid);
    }
}
