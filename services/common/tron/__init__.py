"""TRON wire code shared by services: base58check addresses and a small protobuf encoder/decoder for
Transaction / Transaction.raw / Contract / Any and the contract messages the cluster builds.

No dependency on devnet (a separate program) or on generated TRON protos: the schemas here follow
java-tron's field numbers (core/Tron.proto, core/contract/*.proto) and are checked against public vectors.
"""
