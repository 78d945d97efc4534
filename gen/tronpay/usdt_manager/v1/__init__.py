"""Generated from proto/tronpay/usdt_manager/v1 by `make gen`; do not edit."""
