# devnet protocol layer: TRON protobuf messages -> devnet/pb (committed, checked fresh by tests).
DEVNET_PROTO_SRC := $(sort $(wildcard devnet/proto/*.proto))
DEVNET_PB_OUT ?= .

.PHONY: devnet-proto devnet-proto-check

# protoc's virtual proto path maps devnet/pb/<f>.proto onto devnet/proto/<f>.proto, so the generated
# modules import each other as devnet.pb.* and the descriptors register as devnet/pb/*.proto.
devnet-proto: ## Generate devnet/pb (*_pb2.py + .pyi) from devnet/proto/*.proto
	mkdir -p $(DEVNET_PB_OUT)/devnet/pb
	$(PY) -m grpc_tools.protoc -Idevnet/pb=devnet/proto \
		--plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy \
		--python_out=$(DEVNET_PB_OUT) --mypy_out=quiet:$(DEVNET_PB_OUT) \
		$(patsubst devnet/proto/%,devnet/pb/%,$(DEVNET_PROTO_SRC))
	printf '"""Generated TRON protobuf modules (make devnet-proto); do not edit."""\n' \
		> $(DEVNET_PB_OUT)/devnet/pb/__init__.py

devnet-proto-check: ## Fail if the committed devnet/pb differs from a fresh generation
	$(PY) -m pytest -q tests/devnet/test_codec.py -k pb_fresh
