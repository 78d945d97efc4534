"""usdt-manager: TRC20 transfers with their lifecycle, approve/allowance, balances and history."""
