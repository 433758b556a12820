# keyledger: `make run` starts a dev instance, `make test` runs every test.
GO ?= go
BIN := bin/keyledger
TEST_TIMEOUT ?= 9m

.PHONY: run build test lint bench postgres tools fuzz

build:
	$(GO) build -o $(BIN) ./cmd/keyledger

## run: embedded NATS (data under .keyledger/), local PostgreSQL, API on :8080
run: postgres build
	./$(BIN) dev

## test: gofmt, go vet, the import rules (scripts/check-imports.sh), all tests with -race, then the
## allocation test (meaningless under -race) without it
test: postgres tools lint
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(GO) test -count=1 -run 'AllocatesNothing' ./projections/credindex/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@GO=$(GO) ./scripts/check-imports.sh

## bench: the benchmark table of the README (reported, never asserted)
bench: postgres
	$(GO) run ./cmd/keyledger-bench

postgres:
	@./scripts/ensure-postgres.sh

## tools: curl and jq, which the README's first steps (run by a test) use
tools:
	@./scripts/ensure-tools.sh

## fuzz: run the fuzzers for a while (corpora in domain/testdata/fuzz and
## httpapi/testdata/fuzz; `make test` replays them)
fuzz: postgres
	$(GO) test ./domain -run XXX -fuzz FuzzParseCredential -fuzztime 30s
	$(GO) test ./domain -run XXX -fuzz FuzzParseAllowlist -fuzztime 30s
	$(GO) test ./domain -run XXX -fuzz FuzzParseName -fuzztime 30s
	$(GO) test ./httpapi -run XXX -fuzz FuzzHTTP -fuzztime 60s
