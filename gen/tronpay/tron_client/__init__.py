"""Generated from proto/tronpay/tron_client by `make gen`; do not edit."""
