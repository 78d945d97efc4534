"""Generated from proto/tronpay/common/v1 by `make gen`; do not edit."""
