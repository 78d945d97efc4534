"""trx-staking: Stake 2.0 freeze/unfreeze/withdraw, resource delegation, votes and rewards."""
