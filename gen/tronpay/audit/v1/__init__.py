"""Generated from proto/tronpay/audit/v1 by `make gen`; do not edit."""
