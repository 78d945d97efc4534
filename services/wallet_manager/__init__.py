"""wallet-manager: wallets, key custody and signing, deposit addresses, balances and history.

Layout (one place for each thing):
  service.py   wiring (build) and the indexes of the service's collections
  servicer.py  the gRPC servicer: request_id handling, delegation, database outage -> UNAVAILABLE
  wallets.py   wallet lifecycle per kind (HD, IMPORTED, WATCH_ONLY, LEDGER, TREZOR, TRONLINK), list/update/
               delete, TronLink challenges, deposit-address derivation, public keys
  signing.py   SignTransaction / SignMessage: policy gate, daily limits, signers, group-committed signing log
  keys.py      KeyVault, the only custody path: keyring (KEKs from WALLET_ENCRYPTION_KEY[_PREVIOUS]; the
               public devnet key only on a local devnet), master seed, sealing keys, sealed-key signing
               (benchmarks/bench_sign_core.py measures it), integrity tags
  integrity.py what the tags over policies and daily-spend links cover, and the refusal when one fails
  devices.py   Ledger / Trezor access behind HARDWARE_WALLET_ENABLED, LEDGER_ENABLED, TREZOR_ENABLED
  chain.py     tron-client calls: balances, transfer history, watch-list registration
  store.py     every MongoDB query (and why limits/sequences are unique inserts on FerretDB)
  convert.py   contract <-> document <-> vault policy conversions
  admin.py     operator commands: rotate-key, import-seed, seal-integrity, restore-wallet, status
  vault/       the cryptographic library those compose (envelope keystore, HD, tx parser, policy,
               messages, TronLink proofs, Ledger/Trezor clients); no service state, see vault/README.md

Run: `python -m services.wallet_manager`; operator commands: `python -m services.wallet_manager rotate-key`
(see admin.py for the no-downtime rotation procedure), `... import-seed < mnemonic.txt`, `... seal-integrity`,
`... restore-wallet WALLET_ID`, `... status`.

Deleting a wallet (DeleteWallet) is soft: it stops signing and deriving and frees its addresses for new
wallets, but its keys stay sealed and its addresses stay on tron-client's watch list, so funds that reach
it later are recorded and an admin recovers them with `restore-wallet` and a sweep.
"""
