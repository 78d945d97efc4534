"""Generated from proto/tronpay/common by `make gen`; do not edit."""
