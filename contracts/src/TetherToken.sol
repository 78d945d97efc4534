// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title TetherToken: a USDT-compatible TRC20 for the devnet.
/// @notice Mirrors the externally visible behaviour of USDT on TRON (TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t):
/// 6 decimals, owner-managed blacklist, pause, issue/redeem. Written from scratch for this project.
contract TetherToken {
    string public constant name = "Tether USD";
    string public constant symbol = "USDT";
    uint8 public constant decimals = 6;

    address public owner;
    bool public paused;
    uint256 public totalSupply;

    mapping(address => uint256) private _balances;
    mapping(address => mapping(address => uint256)) private _allowances;
    mapping(address => bool) public isBlackListed;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event Pause();
    event Unpause();
    event Issue(uint256 amount);
    event Redeem(uint256 amount);
    event AddedBlackList(address indexed user);
    event RemovedBlackList(address indexed user);
    event DestroyedBlackFunds(address indexed blackListedUser, uint256 balance);

    modifier onlyOwner() {
        require(msg.sender == owner, "Ownable: caller is not the owner");
        _;
    }

    modifier whenNotPaused() {
        require(!paused, "Pausable: paused");
        _;
    }

    constructor(address holder, uint256 initialSupply) {
        require(holder != address(0), "TetherToken: holder is the zero address");
        owner = msg.sender;
        emit OwnershipTransferred(address(0), msg.sender);
        totalSupply = initialSupply;
        _balances[holder] = initialSupply;
        emit Transfer(address(0), holder, initialSupply);
    }

    // ---- TRC20 ----

    function balanceOf(address account) external view returns (uint256) {
        return _balances[account];
    }

    function allowance(address holder, address spender) external view returns (uint256) {
        return _allowances[holder][spender];
    }

    function transfer(address to, uint256 value) external whenNotPaused returns (bool) {
        require(!isBlackListed[msg.sender], "TetherToken: sender is blacklisted");
        _transfer(msg.sender, to, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external whenNotPaused returns (bool) {
        require(!isBlackListed[from], "TetherToken: sender is blacklisted");
        uint256 allowed = _allowances[from][msg.sender];
        require(allowed >= value, "TetherToken: insufficient allowance");
        // An unlimited allowance is never decreased (saves an SSTORE, as USDT does).
        if (allowed != type(uint256).max) {
            unchecked {
                _allowances[from][msg.sender] = allowed - value;
            }
        }
        _transfer(from, to, value);
        return true;
    }

    function approve(address spender, uint256 value) external whenNotPaused returns (bool) {
        require(spender != address(0), "TetherToken: approve to the zero address");
        _allowances[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    // ---- Ownable ----

    function getOwner() external view returns (address) {
        return owner;
    }

    function transferOwnership(address newOwner) external onlyOwner {
        require(newOwner != address(0), "Ownable: new owner is the zero address");
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    // ---- Pausable ----

    function pause() external onlyOwner {
        require(!paused, "Pausable: paused");
        paused = true;
        emit Pause();
    }

    function unpause() external onlyOwner {
        require(paused, "Pausable: not paused");
        paused = false;
        emit Unpause();
    }

    // ---- Blacklist ----

    function getBlackListStatus(address maker) external view returns (bool) {
        return isBlackListed[maker];
    }

    function addBlackList(address evilUser) external onlyOwner {
        isBlackListed[evilUser] = true;
        emit AddedBlackList(evilUser);
    }

    function removeBlackList(address clearedUser) external onlyOwner {
        isBlackListed[clearedUser] = false;
        emit RemovedBlackList(clearedUser);
    }

    function destroyBlackFunds(address blackListedUser) external onlyOwner {
        require(isBlackListed[blackListedUser], "TetherToken: user is not blacklisted");
        uint256 dirtyFunds = _balances[blackListedUser];
        _balances[blackListedUser] = 0;
        totalSupply -= dirtyFunds;
        emit Transfer(blackListedUser, address(0), dirtyFunds);
        emit DestroyedBlackFunds(blackListedUser, dirtyFunds);
    }

    // ---- Issue / redeem (to and from the owner's balance, as USDT) ----

    function issue(uint256 amount) external onlyOwner {
        totalSupply += amount;
        _balances[owner] += amount;
        emit Transfer(address(0), owner, amount);
        emit Issue(amount);
    }

    function redeem(uint256 amount) external onlyOwner {
        require(_balances[owner] >= amount, "TetherToken: redeem amount exceeds balance");
        unchecked {
            _balances[owner] -= amount;
            totalSupply -= amount;
        }
        emit Transfer(owner, address(0), amount);
        emit Redeem(amount);
    }

    // ---- internal ----

    function _transfer(address from, address to, uint256 value) private {
        require(to != address(0), "TetherToken: transfer to the zero address");
        uint256 fromBalance = _balances[from];
        require(fromBalance >= value, "TetherToken: transfer amount exceeds balance");
        unchecked {
            _balances[from] = fromBalance - value;
        }
        _balances[to] += value;
        emit Transfer(from, to, value);
    }
}
