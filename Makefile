# Makefile: the two commands for a fresh Debian 12 machine are `make run` and `make test`.
#
#   make run          install missing packages, release build, run switchd in the foreground
#                     with its built-in default networks, Lima's `shared` (192.168.107.0/24,
#                     uplink sw-shared) and `host` (192.168.108.0/24, uplink sw-host); needs
#                     root (Ctrl-C stops it cleanly and undoes its changes to the host)
#   make test         install missing packages, debug build, unit tests, integration tests (root)
#   make integration  only the integration tests, against $(SWITCHD)
#   make bench        iperf3 through switchd, the Linux bridge, OVS and vde_switch (bench/iperf.sh)
#   make deps         install missing Debian packages (scripts/deps.sh --list names them)

SWIFT   ?= swift
SWITCHD ?= $(CURDIR)/.build/debug/switchd
RUN_ARGS ?=

.PHONY: all deps build release run test unit integration bench clean

all: build

deps:
	@scripts/deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

run: release
	exec .build/release/switchd run $(RUN_ARGS)

test:
	@scripts/test.sh

unit: build
	$(SWIFT) test

integration:
	SWITCHD=$(SWITCHD) Tests/integration/run.sh $(TESTS)

bench: release
	SWITCHD=$(CURDIR)/.build/release/switchd bench/iperf.sh

clean:
	$(SWIFT) package clean
