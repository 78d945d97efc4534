// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// Test-only TRC20 whose `transfer` answers the ways real tokens do, chosen by `value % 10`:
///   0 moves, returns true          (standard; the devnet's TetherToken)
///   1 moves, returns false         (USDT on TRON: StandardTokenWithFees.transfer has no return statement)
///   2 moves, returns nothing       (USDT on Ethereum)
///   3 does not move, returns false (a token that signals failure with false)
///   4 reverts
/// It has no isBlackListed, so the router's blacklist view reverts and counts as "not blacklisted".
contract QuirkToken {
    mapping(address => uint256) public balanceOf;

    constructor(uint256 supply) {
        balanceOf[msg.sender] = supply;
    }

    function transfer(address to, uint256 value) external returns (bool) {
        uint256 mode = value % 10;
        require(mode != 4, "QuirkToken: refused");
        if (mode == 3) return false;
        require(balanceOf[msg.sender] >= value, "QuirkToken: balance");
        balanceOf[msg.sender] -= value;
        balanceOf[to] += value;
        if (mode == 2) {
            assembly {
                return(0, 0)
            }
        }
        return mode == 0;
    }
}
