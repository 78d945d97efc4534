"""Generated from proto/tronpay/audit by `make gen`; do not edit."""
