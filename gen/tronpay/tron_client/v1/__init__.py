"""Generated from proto/tronpay/tron_client/v1 by `make gen`; do not edit."""
