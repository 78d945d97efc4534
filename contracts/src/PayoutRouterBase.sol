// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @dev What the router calls on its token: TRC20 `balanceOf`/`transfer` and USDT's blacklist view.
interface IPayoutToken {
    function balanceOf(address account) external view returns (uint256);
    function transfer(address to, uint256 value) external returns (bool);
    function isBlackListed(address account) external view returns (bool);
}

/// @title PayoutRouterBase: roles, pause, limits and the once-only payout engine shared by both routers.
/// @notice The router holds the payout token itself (a treasury funds it with plain transfers) and pays
/// with `transfer` from its own balance, so a stolen disburser key can move funds only through this
/// contract's rules: once per payout id, per-payout and per-day limits, pause.
/// @dev Every payout id is recorded on chain when paid (recipient and amount in one slot) and never paid
/// again: a retry, or a later batch containing the id, emits `AlreadyPaid` and pays nothing. A failing
/// recipient emits `PayoutFailed` with a reason and does not revert the others; only whole-call problems
/// (caller's role, pause, batch size, array lengths) revert. No reentrancy guard: the only external calls
/// go to the immutable token, every state-changing entry point is role-gated and the token can never be
/// granted a role, so the token cannot re-enter a paying function (and TVM charges 5 000 energy for
/// each guard write, with no refunds).
abstract contract PayoutRouterBase {
    /// @notice Grants and revokes every role, changes limits, withdraws while paused.
    bytes32 public constant DEFAULT_ADMIN_ROLE = 0x00;
    /// @notice May call the paying entry points (the payout service's sending account).
    bytes32 public constant DISBURSER_ROLE = keccak256("DISBURSER_ROLE");
    /// @notice May pause and unpause payouts.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// @notice Why one payout of a call was not paid (the `reason` of `PayoutFailed`).
    enum Failure {
        None,
        InvalidRecipient, // the zero address, the router or the token
        ZeroAmount,
        OverPerTxLimit, // amount > maxPerTx
        OverDailyLimit, // amount > what is left of maxPerDay in this UTC day
        InsufficientBalance, // amount > the router's token balance
        RecipientBlacklisted, // the token's isBlackListed(recipient) is true
        TransferFailed, // the token's transfer reverted or moved nothing
        KycMissing, // PayoutRouterKYC: zero kycHash
        KycExpired, // PayoutRouterKYC: expiry <= block.timestamp
        KycInvalidSignature, // PayoutRouterKYC: not signed by a compliance signer for this chain, router, recipient
        OverRecipientDailyLimit // PayoutRouterKYC: over the recipient's own daily limit
    }

    /// @notice The token paid out (USDT); fixed at deployment.
    IPayoutToken public immutable token;
    /// @notice Largest single payout, in token base units.
    uint96 public maxPerTx;
    /// @notice Largest sum paid per UTC day (`block.timestamp / 1 days`), in token base units.
    uint96 public maxPerDay;
    /// @notice Most payouts one batch call may carry (PAYOUT_BATCH_SIZE of the payout service).
    uint32 public maxBatchSize;
    /// @notice True while payouts are stopped.
    bool public paused;

    mapping(bytes32 role => mapping(address account => bool)) private _roles;
    /// @notice Sum paid per UTC day number.
    mapping(uint256 day => uint256 amount) public dailyDisbursed;
    // payout id => amount << 160 | recipient; zero = not paid. One slot records both (uint96 amount).
    mapping(bytes32 payoutId => uint256 record) private _payouts;

    event RoleGranted(bytes32 indexed role, address indexed account, address indexed sender);
    event RoleRevoked(bytes32 indexed role, address indexed account, address indexed sender);
    event Paused(address account);
    event Unpaused(address account);
    /// @notice The admin changed the limits (previous and new values).
    event LimitsChanged(uint256 previousMaxPerTx, uint256 maxPerTx, uint256 previousMaxPerDay, uint256 maxPerDay);
    /// @notice The admin changed the largest batch.
    event MaxBatchSizeChanged(uint256 previousMaxBatchSize, uint256 maxBatchSize);
    /// @notice `amount` went to `to` for `payoutId` (recorded; the id is never paid again).
    event Paid(bytes32 indexed payoutId, address indexed to, uint256 amount);
    /// @notice `payoutId` was not paid for `reason`; nothing was recorded, so it may be sent again.
    event PayoutFailed(bytes32 indexed payoutId, address indexed to, uint256 amount, Failure reason);
    /// @notice `payoutId` had been paid before (to `to`, `amount`: the recorded payment); nothing paid now.
    event AlreadyPaid(bytes32 indexed payoutId, address indexed to, uint256 amount);
    /// @notice Summary of one batch call: how many payouts were paid, failed, or had been paid before.
    event BatchDisbursed(
        bytes32 indexed batchId, uint256 paid, uint256 failed, uint256 alreadyPaid, uint256 amountPaid
    );
    event EmergencyWithdrawal(address indexed to, uint256 amount);

    error Unauthorized(address account, bytes32 role);
    error EnforcedPause();
    error ExpectedPause();
    error EmptyBatch();
    error BatchTooLarge(uint256 size, uint256 maxBatchSize);
    error LengthMismatch();
    error InvalidLimits();
    error InvalidAddress();
    error WithdrawalFailed();

    /// @dev Per-call state: read once, updated in memory, the day's total written once at the end.
    struct Run {
        uint256 day;
        uint256 spentToday;
        uint256 perTx;
        uint256 dayLeft;
        uint256 balance;
        uint256 paid;
        uint256 failed;
        uint256 alreadyPaid;
        uint256 amountPaid;
    }

    modifier onlyRole(bytes32 role) {
        if (!_roles[role][msg.sender]) revert Unauthorized(msg.sender, role);
        _;
    }

    modifier whenNotPaused() {
        if (paused) revert EnforcedPause();
        _;
    }

    /// @param token_ The payout token (a contract).
    /// @param admin Receives DEFAULT_ADMIN_ROLE; grants the other roles afterwards.
    /// @param maxPerTx_ Largest single payout (base units, at most 2^96 - 1).
    /// @param maxPerDay_ Largest sum per UTC day (>= maxPerTx_, at most 2^96 - 1).
    /// @param maxBatchSize_ Most payouts per batch call (1 .. 2^32 - 1).
    constructor(address token_, address admin, uint256 maxPerTx_, uint256 maxPerDay_, uint256 maxBatchSize_) {
        if (token_.code.length == 0 || admin == address(0) || admin == token_) revert InvalidAddress();
        token = IPayoutToken(token_);
        _setLimits(maxPerTx_, maxPerDay_);
        _setMaxBatchSize(maxBatchSize_);
        _grant(DEFAULT_ADMIN_ROLE, admin);
    }

    // ---- roles (AccessControl-compatible names and events; one admin role for all) ----

    /// @notice Whether `account` holds `role`.
    function hasRole(bytes32 role, address account) public view returns (bool) {
        return _roles[role][account];
    }

    /// @notice The role that administers `role`: always DEFAULT_ADMIN_ROLE.
    function getRoleAdmin(bytes32) external pure returns (bytes32) {
        return DEFAULT_ADMIN_ROLE;
    }

    /// @notice Admin only. The token and the zero address can never hold a role.
    function grantRole(bytes32 role, address account) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (account == address(0) || account == address(token)) revert InvalidAddress();
        _grant(role, account);
    }

    /// @notice Admin only.
    function revokeRole(bytes32 role, address account) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _revoke(role, account);
    }

    /// @notice Gives up a role the caller holds (`callerConfirmation` must be the caller, as in OpenZeppelin).
    function renounceRole(bytes32 role, address callerConfirmation) external {
        if (callerConfirmation != msg.sender) revert InvalidAddress();
        _revoke(role, msg.sender);
    }

    // ---- pause ----

    /// @notice Pauser only: every paying entry point reverts until `unpause`.
    function pause() external onlyRole(PAUSER_ROLE) whenNotPaused {
        paused = true;
        emit Paused(msg.sender);
    }

    /// @notice Pauser only.
    function unpause() external onlyRole(PAUSER_ROLE) {
        if (!paused) revert ExpectedPause();
        paused = false;
        emit Unpaused(msg.sender);
    }

    // ---- limits (admin) ----

    /// @notice Admin only: new per-payout and per-day limits (base units); emits LimitsChanged.
    function setLimits(uint256 maxPerTx_, uint256 maxPerDay_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setLimits(maxPerTx_, maxPerDay_);
    }

    /// @notice Admin only: the most payouts per batch call; emits MaxBatchSizeChanged.
    function setMaxBatchSize(uint256 maxBatchSize_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setMaxBatchSize(maxBatchSize_);
    }

    /// @notice Admin only, only while paused: moves `amount` of the token to `to` (e.g. to retire the router).
    function emergencyWithdraw(address to, uint256 amount) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (!paused) revert ExpectedPause();
        if (to == address(0) || to == address(this) || to == address(token)) revert InvalidAddress();
        uint256 before = token.balanceOf(address(this));
        if (amount == 0 || amount > before) revert WithdrawalFailed();
        (bool moved, ) = _transferOut(to, amount, before);
        if (!moved) revert WithdrawalFailed();
        emit EmergencyWithdrawal(to, amount);
    }

    // ---- views ----

    /// @notice The router's token balance (what it can still pay).
    function balance() external view returns (uint256) {
        return token.balanceOf(address(this));
    }

    /// @notice Sum paid in the current UTC day.
    function getTodayDisbursed() external view returns (uint256) {
        return dailyDisbursed[block.timestamp / 1 days];
    }

    /// @notice What may still be paid in the current UTC day.
    function remainingToday() external view returns (uint256) {
        uint256 spent = dailyDisbursed[block.timestamp / 1 days];
        return spent >= maxPerDay ? 0 : maxPerDay - spent;
    }

    /// @notice The recorded payment of `payoutId`: recipient and amount, (0, 0) if never paid.
    function payoutOf(bytes32 payoutId) external view returns (address to, uint256 amount) {
        uint256 record = _payouts[payoutId];
        return (address(uint160(record)), record >> 160);
    }

    /// @notice Whether `payoutId` has been paid.
    function isPaid(bytes32 payoutId) external view returns (bool) {
        return _payouts[payoutId] != 0;
    }

    // ---- payout engine ----

    /// @dev Checks a batch's shape (reverts the whole call) before anything is paid.
    function _checkBatch(uint256 size, uint256 payoutsLength) internal view {
        if (size == 0) revert EmptyBatch();
        if (size > maxBatchSize) revert BatchTooLarge(size, maxBatchSize);
        if (payoutsLength != size) revert LengthMismatch();
    }

    /// @dev Reads what every payout of the call needs once.
    function _openRun() internal view returns (Run memory run) {
        run.day = block.timestamp / 1 days;
        run.spentToday = dailyDisbursed[run.day];
        run.perTx = maxPerTx;
        uint256 perDay = maxPerDay;
        run.dayLeft = run.spentToday >= perDay ? 0 : perDay - run.spentToday;
        run.balance = token.balanceOf(address(this));
    }

    /// @dev Writes the day's total once for the whole call.
    function _closeRun(Run memory run) internal {
        if (run.amountPaid != 0) dailyDisbursed[run.day] = run.spentToday + run.amountPaid;
    }

    /// @dev Pays one payout unless it was paid before or fails a check; `preFailure` is a failure found
    /// by the caller (KYC), reported only when the id was not paid before. True when paid now.
    function _pay(bytes32 payoutId, address to, uint256 amount, Failure preFailure, Run memory run)
        internal
        returns (bool)
    {
        uint256 record = _payouts[payoutId];
        if (record != 0) {
            run.alreadyPaid++;
            emit AlreadyPaid(payoutId, address(uint160(record)), record >> 160);
            return false;
        }
        Failure failure = preFailure;
        if (failure == Failure.None) failure = _check(to, amount, run);
        if (failure == Failure.None) {
            // Recorded before the call (checks-effects-interactions), erased again if nothing moved.
            _payouts[payoutId] = (amount << 160) | uint160(to);
            bool moved;
            (moved, run.balance) = _transferOut(to, amount, run.balance);
            if (moved) {
                run.dayLeft -= amount;
                run.amountPaid += amount;
                run.paid++;
                emit Paid(payoutId, to, amount);
                return true;
            }
            delete _payouts[payoutId];
            failure = Failure.TransferFailed;
        }
        run.failed++;
        emit PayoutFailed(payoutId, to, amount, failure);
        return false;
    }

    function _check(address to, uint256 amount, Run memory run) private view returns (Failure) {
        if (to == address(0) || to == address(this) || to == address(token)) return Failure.InvalidRecipient;
        if (amount == 0) return Failure.ZeroAmount;
        if (amount > run.perTx) return Failure.OverPerTxLimit;
        if (amount > run.dayLeft) return Failure.OverDailyLimit;
        if (amount > run.balance) return Failure.InsufficientBalance;
        if (_isBlacklisted(to)) return Failure.RecipientBlacklisted;
        return Failure.None;
    }

    /// @dev USDT's blacklist only stops blacklisted senders; paying a blacklisted recipient would freeze
    /// the funds there. A token without `isBlackListed` reverts the view: treated as not blacklisted.
    function _isBlacklisted(address to) private view returns (bool) {
        (bool ok, bytes memory ret) = address(token).staticcall(abi.encodeCall(IPayoutToken.isBlackListed, (to)));
        return ok && ret.length >= 32 && uint256(bytes32(ret)) != 0;
    }

    /// @dev Calls `transfer` without letting a revert escape. Returns whether funds left the router and its
    /// balance afterwards. `true` returned by the token is trusted; anything else is settled by the balance:
    /// USDT on TRON returns `false` from a successful `transfer` (USDT on Ethereum returns nothing), so only
    /// the router's balance tells whether the payment happened. A moved payment is never reported as
    /// failed, which keeps "paid at most once" even for such tokens.
    function _transferOut(address to, uint256 amount, uint256 balanceBefore) internal returns (bool, uint256) {
        (bool ok, bytes memory ret) = address(token).call(abi.encodeCall(IPayoutToken.transfer, (to, amount)));
        if (!ok) return (false, balanceBefore);
        if (ret.length >= 32 && uint256(bytes32(ret)) == 1) return (true, balanceBefore - amount);
        uint256 balanceAfter = token.balanceOf(address(this));
        return (balanceAfter < balanceBefore, balanceAfter);
    }

    // ---- internal setters ----

    function _setLimits(uint256 maxPerTx_, uint256 maxPerDay_) private {
        if (maxPerTx_ == 0 || maxPerTx_ > maxPerDay_ || maxPerDay_ > type(uint96).max) revert InvalidLimits();
        emit LimitsChanged(maxPerTx, maxPerTx_, maxPerDay, maxPerDay_);
        maxPerTx = uint96(maxPerTx_);
        maxPerDay = uint96(maxPerDay_);
    }

    function _setMaxBatchSize(uint256 maxBatchSize_) private {
        if (maxBatchSize_ == 0 || maxBatchSize_ > type(uint32).max) revert InvalidLimits();
        emit MaxBatchSizeChanged(maxBatchSize, maxBatchSize_);
        maxBatchSize = uint32(maxBatchSize_);
    }

    function _grant(bytes32 role, address account) private {
        if (!_roles[role][account]) {
            _roles[role][account] = true;
            emit RoleGranted(role, account, msg.sender);
        }
    }

    function _revoke(bytes32 role, address account) private {
        if (_roles[role][account]) {
            _roles[role][account] = false;
            emit RoleRevoked(role, account, msg.sender);
        }
    }
}
