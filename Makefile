# Switchyard. `make run` starts the control plane; `make test` runs every test.
# Go's official tarball installs to /usr/local/go, often not yet on PATH.
export PATH := $(PATH):/usr/local/go/bin
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
FUZZTIME ?= 10s

.PHONY: all build run test deps lint tinygo-check bench bench-compare bench-rollout bench-cluster cluster-demo loadgen fuzz soak screenshots clean devicefw-arm64 devicefw-armv6 bin/controlplane bin/devicefw

all: build

build: bin/controlplane bin/devicefw

bin/controlplane:
	$(GO) build -ldflags "$(LDFLAGS)" -o $@ ./cmd/controlplane

bin/devicefw:
	$(GO) build -ldflags "$(LDFLAGS)" -o $@ ./cmd/devicefw

# The control plane on its embedded broker, with ./config.yaml.
run: bin/controlplane
	./bin/controlplane --config config.yaml

# Every check and test, with the race detector; installs what the tests need
# on a fresh Debian machine first (scripts/testdeps.sh: apt-get as root, or
# it prints the apt-get line and stops). Fuzz targets run their seed corpora.
test: deps lint tinygo-check
	$(GO) test -race -count=1 -timeout 9m ./...
	$(GO) test -count=1 -run 'Alloc|ReadyQueue' ./devices ./wsgateway   # allocation counts skip under -race (it allocates)

deps:
	GO=$(GO) scripts/testdeps.sh

# The TinyGo firmware with standard Go (no TinyGo here): type-check main.go
# against espradio, drivers and the core (firmware/tinygo/README.md). Both
# modules use natiu-mqtt v0.7.0, so ./board/natiusession's tests cover it.
tinygo-check:
	cd firmware/tinygo && $(GO) vet ./... && $(GO) run ./internal/apicheck

# gofmt (any diff fails), go vet and staticcheck (pinned in go.mod's tool block).
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './firmware/*')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

loadgen:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/loadgen ./cmd/loadgen

# Issue 12's rollout benchmark: 1,000 simulated boards, a 5 MiB build in
# waves 1 / 10 % / 100 %, then the same fleet failing its canary.
bench-rollout:
	GO=$(GO) bench/rollout.sh

# Issue 15's cluster benchmark: the fleet workload through a three-node
# NATS cluster and haproxy vs the embedded broker, failover time when a
# node is killed under load, the largest idle fleet across three control
# planes (bench/cluster.sh says how to size it).
bench-cluster:
	GO=$(GO) bench/cluster.sh

# Three NATS nodes, two control planes behind haproxy, a simulated fleet,
# on this machine, until Ctrl-C (deploy/cluster/README.md).
cluster-demo:
	GO=$(GO) deploy/cluster/demo.sh

# Switchyard vs Mosquitto vs Node-RED on loopback (installs the peers from
# Debian and npm when missing); BENCH_SECONDS=30 to lengthen.
bench-compare:
	GO=$(GO) bench/compare.sh

# Coverage-guided fuzzing of the parsers (topics, payloads, browser
# messages and WebSocket frames) and the config loader, FUZZTIME
# each. Their corpora live in testdata/fuzz and run in every `make test`.
fuzz:
	for f in FuzzParseTopic FuzzParsePayloads FuzzScanObject FuzzParseBrowserMessage; do \
		$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) ./devices || exit 1; \
	done
	$(GO) test -run '^$$' -fuzz '^FuzzLoadConfig$$' -fuzztime $(FUZZTIME) ./cmd/controlplane
	for f in FuzzMsgReader FuzzMsgReaderReadsGorilla FuzzRoundEncoding; do \
		$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) ./wsgateway || exit 1; \
	done

# The long soak: 1,000 boards at 1 Hz and 100 browsers for SOAK_DURATION
# (default 10m) against the real binary; prints goroutines, fds and RSS over
# time and fails on growth or any lost event. `make test` runs a short one.
SOAK_DURATION ?= 10m
soak:
	SOAK_DURATION=$(SOAK_DURATION) SOAK_BOARDS=$${SOAK_BOARDS:-1000} SOAK_BROWSERS=$${SOAK_BROWSERS:-100} \
		$(GO) test -count=1 -v -run TestSoak -timeout 30m ./soak

# Re-take the docs' pictures (docs/dashboard*.png, docs/board.png, docs/updates.png) from a real render.
screenshots:
	E2E_SCREENSHOTS=1 $(GO) test -count=1 -run TestScreenshots ./e2e

devicefw-arm64:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -ldflags "$(LDFLAGS)" -o bin/devicefw-linux-arm64 ./cmd/devicefw

devicefw-armv6:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=6 $(GO) build -ldflags "$(LDFLAGS)" -o bin/devicefw-linux-armv6 ./cmd/devicefw

clean:
	rm -rf bin
