"""Test harness: starts the real servers (devnet, FerretDB, services, Envoy) on loopback."""
