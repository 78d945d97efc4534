"""Generated from proto/tronpay/payment_gateway by `make gen`; do not edit."""
