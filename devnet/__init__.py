"""Local TRON full node (devnet) that tronpy and TronWeb use unchanged; see devnet/DESIGN.md."""
