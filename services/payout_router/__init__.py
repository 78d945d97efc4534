"""payout-router: single and batch payouts through the PayoutRouterV0 contract, PRKYC, approvals."""
