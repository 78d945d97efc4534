"""Generated from proto/tronpay/payment_gateway/v1 by `make gen`; do not edit."""
