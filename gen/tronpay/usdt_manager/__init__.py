"""Generated from proto/tronpay/usdt_manager by `make gen`; do not edit."""
