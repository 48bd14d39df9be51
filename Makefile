# vhsm: one entry point. `make run` and `make test` install what they need (Debian packages, Python test oracles).
SWIFT ?= swift
BIN = $(shell $(SWIFT) build --show-bin-path 2>/dev/null)
TESTDATA ?= $(abspath ../shared/testdata)

.PHONY: all deps build test unit-test cli-test run bench format lint clean

all: build

deps:
	@scripts/deps.sh

build: deps
	$(SWIFT) build

unit-test: build
	$(SWIFT) test --parallel

cli-test: build
	VHSM=$(BIN)/vhsm TESTDATA=$(TESTDATA) scripts/cli-test.sh

test: lint unit-test cli-test

run: build
	VHSM=$(BIN)/vhsm scripts/run-demo.sh

bench: deps
	$(SWIFT) build -c release
	VHSM=$$($(SWIFT) build -c release --show-bin-path)/vhsm BENCH=$$($(SWIFT) build -c release --show-bin-path)/vhsm-bench \
		TESTDATA=$(TESTDATA) scripts/bench.sh

format:
	$(SWIFT) format --in-place --recursive Sources Tests Package.swift

lint: deps
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift

clean:
	rm -rf .build .build-* out
