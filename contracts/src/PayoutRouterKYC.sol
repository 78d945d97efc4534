// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {PayoutRouterBase} from "./PayoutRouterBase.sol";

/// @title PayoutRouterKYC ("PRKYC"): payouts only to recipients a compliance signer has attested.
/// @notice Same roles, pause, limits and once-only payout ids as PayoutRouterV0, plus a compliance
/// signature per payout: a holder of COMPLIANCE_SIGNER_ROLE signs, with TRON's message prefix (TronLink /
/// TronWeb `signMessageV2`, Ledger "sign personal message"), that `recipient` passed KYC (`kycHash`, a
/// commitment to the off-chain record) until `expiry`, for this chain and this router. The chain learns
/// only the commitment. There is no non-KYC entry point. Optional per-recipient daily limits are set by a
/// compliance signer.
/// @dev Signed message (32 bytes): `kycMessage(recipient, kycHash, expiry)` =
/// keccak256(abi.encode(KYC_ATTESTATION_TYPEHASH, block.chainid & 0xffffffff, address(this), recipient,
/// kycHash, expiry)); the signature is over keccak256("\x19TRON Signed Message:\n32" ‖ message) and is passed
/// in the compact form (r, vs) of EIP-2098: vs = s | (v - 27) << 255, with a low s (s <= n/2). Parameters are
/// plain ABI types, no tuples: TRON's on-chain ABI (getcontract) cannot describe tuple components, and
/// tronpy, TronWeb and TronScan work from it.
contract PayoutRouterKYC is PayoutRouterBase {
    /// @notice Signs KYC attestations; sets per-recipient daily limits.
    bytes32 public constant COMPLIANCE_SIGNER_ROLE = keccak256("COMPLIANCE_SIGNER_ROLE");
    /// @notice Domain tag of the signed message, so the signature means nothing anywhere else.
    bytes32 public constant KYC_ATTESTATION_TYPEHASH =
        keccak256(
            "PayoutRouterKYC.Attestation(uint256 chainId,address router,address recipient,bytes32 kycHash,uint256 expiry)"
        );
    /// @notice Words per payout in disburseBatchKYC's `attestations`: kycHash, expiry, r, vs.
    uint256 public constant ATTESTATION_WORDS = 4;

    /// @notice Per-recipient daily limit (base units); 0 = none.
    mapping(address recipient => uint256 limit) public recipientDailyLimit;
    /// @notice Sum paid to a recipient per UTC day (tracked only for recipients with a limit).
    mapping(address recipient => mapping(uint256 day => uint256 amount)) public recipientDailyDisbursed;

    /// @notice The attestation under which `payoutId` was paid (follows its Paid event).
    event KycPayout(bytes32 indexed payoutId, address indexed to, bytes32 kycHash, uint256 expiry);
    /// @notice A compliance signer set `recipient`'s daily limit (0 = none).
    event RecipientDailyLimitChanged(address indexed recipient, uint256 limit, address indexed by);

    /// @param token_ The payout token (USDT).
    /// @param admin Receives DEFAULT_ADMIN_ROLE.
    /// @param maxPerTx_ Largest single payout (base units).
    /// @param maxPerDay_ Largest sum per UTC day (base units).
    /// @param maxBatchSize_ Most payouts per batch call.
    constructor(address token_, address admin, uint256 maxPerTx_, uint256 maxPerDay_, uint256 maxBatchSize_)
        PayoutRouterBase(token_, admin, maxPerTx_, maxPerDay_, maxBatchSize_)
    {}

    /// @notice Disburser only, not paused: pays `amount` to `to` once for `payoutId` if (kycHash, expiry,
    /// r, vs) is a valid, unexpired compliance attestation of `to`. Emits Paid + KycPayout, AlreadyPaid or
    /// PayoutFailed(reason); none of these revert.
    /// @param kycHash Commitment to the recipient's off-chain KYC record; non-zero.
    /// @param expiry Unix seconds; the attestation is valid while block.timestamp < expiry.
    /// @param r The signature's r.
    /// @param vs The signature's s with v's parity in the top bit (EIP-2098).
    function disburseKYC(
        bytes32 payoutId,
        address to,
        uint256 amount,
        bytes32 kycHash,
        uint256 expiry,
        bytes32 r,
        bytes32 vs
    ) external onlyRole(DISBURSER_ROLE) whenNotPaused {
        Run memory run = _openRun();
        _payKyc(payoutId, to, amount, [kycHash, bytes32(expiry), r, vs], run);
        _closeRun(run);
    }

    /// @notice Disburser only, not paused: up to `maxBatchSize` KYC payouts in one transaction, each once;
    /// per payout as disburseKYC, then BatchDisbursed. Reverts only for an empty batch, too many payouts or
    /// unequal lengths.
    /// @param payouts Per payout `amount << 160 | uint160(recipient)` (see PayoutRouterV0.disburseBatch).
    /// @param attestations ATTESTATION_WORDS words per payout, in payout order: kycHash, expiry, r, vs.
    function disburseBatchKYC(
        bytes32 batchId,
        bytes32[] calldata payoutIds,
        uint256[] calldata payouts,
        bytes32[] calldata attestations
    ) external onlyRole(DISBURSER_ROLE) whenNotPaused {
        uint256 size = payoutIds.length;
        _checkBatch(size, payouts.length);
        if (attestations.length != size * ATTESTATION_WORDS) revert LengthMismatch();
        Run memory run = _openRun();
        for (uint256 i; i < size; ++i) {
            uint256 packed = payouts[i];
            uint256 at = i * ATTESTATION_WORDS;
            bytes32[4] memory attestation =
                [attestations[at], attestations[at + 1], attestations[at + 2], attestations[at + 3]];
            _payKyc(payoutIds[i], address(uint160(packed)), packed >> 160, attestation, run);
        }
        _closeRun(run);
        emit BatchDisbursed(batchId, run.paid, run.failed, run.alreadyPaid, run.amountPaid);
    }

    /// @notice Compliance signer only: `recipient` may receive at most `limit` per UTC day (0 = no limit).
    function setRecipientDailyLimit(address recipient, uint256 limit) external onlyRole(COMPLIANCE_SIGNER_ROLE) {
        recipientDailyLimit[recipient] = limit;
        emit RecipientDailyLimitChanged(recipient, limit, msg.sender);
    }

    /// @notice The 32-byte message a compliance signer signs (with the TRON prefix) to attest `recipient`.
    function kycMessage(address recipient, bytes32 kycHash, uint256 expiry) public view returns (bytes32) {
        return keccak256(
            abi.encode(KYC_ATTESTATION_TYPEHASH, block.chainid & 0xffffffff, address(this), recipient, kycHash, expiry)
        );
    }

    /// @notice Why a payout to `recipient` under this attestation would be refused now for KYC reasons
    /// (Failure.None if it would pass): KycMissing, KycExpired or KycInvalidSignature.
    function kycFailure(address recipient, bytes32 kycHash, uint256 expiry, bytes32 r, bytes32 vs)
        external
        view
        returns (Failure)
    {
        return _kycFailure(recipient, [kycHash, bytes32(expiry), r, vs]);
    }

    /// @dev `attestation` = [kycHash, expiry, r, vs].
    function _kycFailure(address recipient, bytes32[4] memory attestation) private view returns (Failure) {
        if (attestation[0] == bytes32(0)) return Failure.KycMissing;
        uint256 expiry = uint256(attestation[1]);
        if (expiry <= block.timestamp) return Failure.KycExpired;
        bytes32 message = kycMessage(recipient, attestation[0], expiry);
        bytes32 digest = keccak256(abi.encodePacked("\x19TRON Signed Message:\n32", message));
        uint256 vs = uint256(attestation[3]);
        bytes32 s = bytes32(vs & ((1 << 255) - 1));
        address signer = ecrecover(digest, uint8(27 + (vs >> 255)), attestation[2], s);
        if (signer == address(0) || !hasRole(COMPLIANCE_SIGNER_ROLE, signer)) return Failure.KycInvalidSignature;
        return Failure.None;
    }

    function _payKyc(bytes32 payoutId, address to, uint256 amount, bytes32[4] memory attestation, Run memory run)
        private
    {
        Failure failure = _kycFailure(to, attestation);
        uint256 limit = recipientDailyLimit[to];
        uint256 spent;
        if (limit != 0) {
            spent = recipientDailyDisbursed[to][run.day];
            if (failure == Failure.None && (spent >= limit || amount > limit - spent)) {
                failure = Failure.OverRecipientDailyLimit;
            }
        }
        if (_pay(payoutId, to, amount, failure, run)) {
            if (limit != 0) recipientDailyDisbursed[to][run.day] = spent + amount;
            emit KycPayout(payoutId, to, attestation[0], uint256(attestation[1]));
        }
    }
}
