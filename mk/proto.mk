# Protobuf contracts (proto/) and generated code (gen/), driven by tools/protogen.py.
# Dependency protos (google/api, google/rpc from googleapis-common-protos; buf/validate rendered from the
# protovalidate distribution's embedded descriptor) are materialized in .build/protodeps at build time.
PROTOGEN := $(PY) tools/protogen.py
# proto-breaking compares with this git ref when set; otherwise see `breaking_base` in tools/protogen.py:
# uncommitted proto changes -> HEAD; a branch -> its merge base with main; on main -> the parent of the
# last commit that changed a .proto file or buf.yaml. A shallow clone is first unshallowed from origin (and
# fails without one): a missing history never counts as "nothing to compare with".
PROTO_BREAKING_AGAINST ?=

.PHONY: gen gen-check proto-deps proto-lint proto-format proto-breaking

proto-deps: ## Materialize dependency protos (.build/protodeps) from installed packages
	$(PROTOGEN) deps

gen: ## Regenerate gen/ (Python messages, gRPC + mypy stubs, Envoy descriptor) from proto/
	$(PROTOGEN) gen

gen-check: ## Fail if gen/ differs from a fresh generation (run `make gen` and commit)
	$(PROTOGEN) check

proto-lint: ## buf lint (STANDARD + COMMENTS) and buf format -d --exit-code on proto/
	$(PROTOGEN) lint

proto-format: ## Rewrite proto/ in buf's canonical format
	$(NPM_BIN)/buf format proto -w

proto-breaking: ## buf breaking (FILE rules) against main (PROTO_BREAKING_AGAINST=<ref> to override)
	$(PROTOGEN) breaking $(if $(PROTO_BREAKING_AGAINST),--against $(PROTO_BREAKING_AGAINST))

CHECK_STEPS += proto-lint proto-breaking gen-check
