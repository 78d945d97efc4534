"""Generated TRON protobuf modules (make devnet-proto); do not edit."""
