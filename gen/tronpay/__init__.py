"""Generated from proto/tronpay by `make gen`; do not edit."""
