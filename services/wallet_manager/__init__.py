"""wallet-manager: wallets, key custody and signing, deposit addresses, balances and history."""
