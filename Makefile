# vhsm: one entry point. `make run` and `make test` install what they need (Debian packages, Python test oracles).
SWIFT ?= swift
BIN = $(shell $(SWIFT) build --show-bin-path 2>/dev/null)
TESTDATA ?= $(abspath ../shared/testdata)
MEASURE_CASES ?= 80

.PHONY: all deps build test unit-test cli-test measure-test hvac-test sealed-test run bench format lint clean

all: build

deps:
	@scripts/deps.sh

build: deps
	$(SWIFT) build

unit-test: build
	$(SWIFT) test --parallel

cli-test: build
	VHSM=$(BIN)/vhsm TESTDATA=$(TESTDATA) scripts/cli-test.sh

# vhsm measure against every shipped vector, and against sev-snp-measure 0.0.13 on random inputs in the same run.
measure-test: build
	python3 scripts/measure_vectors.py $(BIN)/vhsm $(TESTDATA)/measure
	python3 scripts/measure_oracle.py $(BIN)/vhsm $(TESTDATA)/measure --cases $(MEASURE_CASES) \
		$(addprefix --kernel ,$(wildcard /boot/vmlinuz-*))

# vhsmd against hvac 2.4.0, and the same checks against OpenBao 2.7.2 to prove they encode Vault's behaviour.
hvac-test: build
	VHSMD=$(BIN)/vhsmd scripts/hvac-test.sh

# vhsmd on sealed storage: config mode, the emulator's Secure Processor as the seal, kill -9 mid-stream, another chip.
# The emulator reaches vhsmd only through the Emulator trait, so this builds a separate test flavour.
EMULATOR_BIN = $(shell $(SWIFT) build --traits Emulator --scratch-path .build-emulator --show-bin-path 2>/dev/null)
sealed-test: deps
	$(SWIFT) build --traits Emulator --scratch-path .build-emulator --product vhsmd
	$(SWIFT) build --traits Emulator --scratch-path .build-emulator --product vhsm
	VHSMD=$(EMULATOR_BIN)/vhsmd VHSM=$(EMULATOR_BIN)/vhsm scripts/sealed-test.sh

test: lint unit-test cli-test measure-test hvac-test sealed-test

run: build
	VHSM=$(BIN)/vhsm scripts/run-demo.sh

bench: deps
	$(SWIFT) build -c release
	$(SWIFT) build -c release --static-swift-stdlib --scratch-path .build-static --product vhsm
	VHSM=$$($(SWIFT) build -c release --show-bin-path)/vhsm BENCH=$$($(SWIFT) build -c release --show-bin-path)/vhsm-bench \
		STATIC_VHSM=.build-static/release/vhsm TESTDATA=$(TESTDATA) scripts/bench.sh
	VHSMD=$$($(SWIFT) build -c release --show-bin-path)/vhsmd scripts/bench-vhsmd.sh

format:
	$(SWIFT) format --in-place --recursive Sources Tests Package.swift

lint: deps
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift

clean:
	rm -rf .build .build-* out
