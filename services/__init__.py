"""The six gRPC services of the TRON payment cluster and their shared runtime (services.common)."""
