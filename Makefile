# vhsm: one entry point. `make run` and `make test` install what they need (Debian packages, Python test oracles).
SWIFT ?= swift
BIN = $(shell $(SWIFT) build --show-bin-path 2>/dev/null)
TESTDATA ?= $(abspath ../shared/testdata)
MEASURE_CASES ?= 80

.PHONY: all deps build emulator-tools test unit-test cli-test measure-test hvac-test oidc-test sealed-test faults-test soak attested-test \
	cluster-join-test \
	login-test run bench format lint clean guest test-guest initramfs initramfs-emulator image check-qemu \
	release-tools install deb deb-test \
	powercut-test powercut-load-test schema-test schema-fuzz attack-test fuzz-build fuzz fuzz-smoke check-ha run-cluster \
	bench-ha

all: build

deps:
	@scripts/deps.sh

build: deps
	$(SWIFT) build

unit-test: build
	$(SWIFT) test --parallel

cli-test: build
	VHSM=$(BIN)/vhsm TESTDATA=$(TESTDATA) scripts/cli-test.sh

# The README's exit-code tables, row by row: each command's exit code and the start of its message.
readme-exit-test: build
	VHSM=$(BIN)/vhsm VHSMD=$(BIN)/vhsmd TESTDATA=$(TESTDATA) scripts/readme-exit-test.py

# vhsm measure against every shipped vector, and against sev-snp-measure 0.0.13 on random inputs in the same run.
measure-test: build
	python3 scripts/measure_vectors.py $(BIN)/vhsm $(TESTDATA)/measure
	python3 scripts/measure_oracle.py $(BIN)/vhsm $(TESTDATA)/measure --cases $(MEASURE_CASES) \
		$(addprefix --kernel ,$(wildcard /boot/vmlinuz-*))

# vhsmd against hvac 2.4.0, and the same checks against OpenBao 2.7.2 to prove they encode Vault's behaviour.
hvac-test: build
	VHSMD=$(BIN)/vhsmd VHSM=$(BIN)/vhsm scripts/hvac-test.sh

# Identity tokens as a relying party sees them: PyJWT verifies vhsmd's tokens with the discovery document alone.
oidc-test: build
	VHSMD=$(BIN)/vhsmd scripts/oidc-test.py

# The emulator (test) flavour of vhsmd and vhsm for the sealed-storage tests: a debug build with the Emulator trait
# in the main scratch path, where changing the trait recompiles only vhsm's own targets. It runs after the tests of
# the default flavour; 'make build' switches back. (The emulator reaches vhsm-init and vhsmd only through the trait;
# a default build has no emulator code in them.) The QEMU tier boots the release guest ('make guest').
test-guest: deps
	$(SWIFT) build --traits Emulator --product vhsmd
	$(SWIFT) build --traits Emulator --product vhsm

# The emulator flavour of the tools in a build directory of its own, which no other target rebuilds: vhsmd there runs
# config mode with "seal": "emulator:SOCKET" on a host without SEV (.build/debug holds whichever flavour was built last).
emulator-tools: deps
	$(SWIFT) build --traits Emulator --scratch-path .build-emulator --product vhsmd
	$(SWIFT) build --traits Emulator --scratch-path .build-emulator --product vhsm
	@echo "emulator flavour: .build-emulator/debug/vhsmd and .build-emulator/debug/vhsm"

# Installing (issue 18). The production flavour (no Emulator trait), release, the Swift runtime linked in
# (--static-swift-stdlib: the tools need no Swift toolchain), in a scratch path of its own; man pages from
# swift-argument-parser's generate-manual (scripts/manpages.sh), completions from --generate-completion-script.
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
DESTDIR ?=
RELEASE_BUILD = -c release --static-swift-stdlib --scratch-path .build-static
RELEASE_BIN = .build-static/release

release-tools: deps
	$(SWIFT) build $(RELEASE_BUILD) --product vhsm
	$(SWIFT) build $(RELEASE_BUILD) --product vhsmd
	$(SWIFT) build $(RELEASE_BUILD) --product generate-manual
	rm -rf out/man && scripts/manpages.sh $(RELEASE_BIN)/generate-manual $(RELEASE_BIN) out/man

# vhsm, vhsmd, man pages, completions (bash, zsh, fish), vhsmd.service, the sysusers and udev files, logrotate and
# /etc/vhsm/vhsmd.json (an edited one is kept; the shipped one goes beside it as .dist). Nothing is started.
install: release-tools
	DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" SYSCONFDIR="$(SYSCONFDIR)" scripts/install.sh $(RELEASE_BIN) out/man

# out/vhsm_VERSION_ARCH.deb, built with dpkg-deb from the same release build and failed on any lintian error
# (out/lintian.txt): 'sudo apt install ./out/vhsm_*.deb'.
deb: release-tools
	scripts/make-deb.sh $(RELEASE_BIN) out/man out >out/deb-path
	lintian --tag-display-limit 0 $$(cat out/deb-path) 2>&1 | grep -v 'root privileges' | tee out/lintian.txt
	@! grep -q '^E: ' out/lintian.txt || { echo "make deb: lintian reports errors (out/lintian.txt)" >&2; exit 1; }
	@echo "make deb: $$(cat out/deb-path), no lintian errors"

# The package installed into a scratch root and used (scripts/deb-test.sh). In 'make test' it packages the debug
# build of 'make build' (the release build would add a quarter of an hour); DEB=out/vhsm_….deb tests 'make deb''s.
deb-test: build
	$(SWIFT) build --product generate-manual
	BIN=$(BIN) GENERATE_MANUAL=$(BIN)/generate-manual TESTDATA=$(TESTDATA) scripts/deb-test.sh

# vhsmd on sealed storage: config mode, the emulator's Secure Processor as the seal, kill -9 mid-stream, another chip.
sealed-test: test-guest
	VHSMD=$(BIN)/vhsmd VHSM=$(BIN)/vhsm scripts/sealed-test.sh

# Failing storage under vhsmd (issue 16): the data directory on a full tmpfs, then writes and fsyncs failing with EIO
# under an LD_PRELOAD shim (scripts/faults/failio.c, built with gcc), and the audit log under both; config mode on the
# emulator seal. Needs root for the tmpfs (unshare -m); without it the full disk is emulated by the shim, and says so.
faults-test: test-guest
	VHSMD=$(BIN)/vhsmd VHSM=$(BIN)/vhsm scripts/faults-test.sh

# Not in make test: SOAK_MINUTES (30) of mixed load on a config-mode vhsmd; RSS, open descriptors and p99 each minute,
# and the drift between the first and the last five minutes (scripts/soak.sh; CSV in out/soak.csv).
soak: test-guest
	VHSMD=$(BIN)/vhsmd VHSM=$(BIN)/vhsm scripts/soak.sh

# Attested TLS (issue 14) on the emulator seal: vhsmd checked by 'vhsm server verify', then by the Python reference
# client (clients/python), a TLS man in the middle (scripts/mitm-proxy.py) and a replayed answer refused by both.
attested-test: test-guest
	VHSMD=$(BIN)/vhsmd VHSM=$(BIN)/vhsm scripts/attested-tls-test.sh
	VHSMD=$(BIN)/vhsmd VHSM=$(BIN)/vhsm TESTDATA=$(TESTDATA) scripts/attested-python-test.sh
	VHSMD=$(BIN)/vhsmd VHSM=$(BIN)/vhsm scripts/login-e2e-test.sh

# The attested cluster join (issue 17 item 4): PostgreSQL 15 in a temporary directory (as the postgres user) and
# vhsmd nodes on emulated chips: a node joins through another by attestation and restarts unsealed by itself; a node
# of another measurement distrusts the sponsor and does not start.
cluster-join-test: test-guest
	VHSMD=$(BIN)/vhsmd VHSM=$(BIN)/vhsm scripts/cluster-join-test.sh

# Workload login (issue 15) through the Python client (clients/python/vhsm_login.py, the protocol implemented a
# second time): vhsmd --dev, auth/sev-snp through the API, an emulated chip's reports, the KV secret its role allows
# and the one it does not, and the refusals (replayed, expired and invented nonces, flipped bytes, other roots).
login-test: build
	VHSMD=$(BIN)/vhsmd VHSM=$(BIN)/vhsm scripts/login-python-test.sh

# HA on PostgreSQL (issue 17): a throwaway PostgreSQL 15 and three vhsmd nodes on three emulated chips under two
# writers; kill -9, SIGSTOP past the lease, step-down, the lease connection terminated and PostgreSQL restarted,
# each HA_ROUNDS times; every acked write read back, never two actives in a 50 ms sample, no plaintext in pg_dump,
# a swapped row refused. The harness checks itself first (no vhsmd needed). The nodes seal with the emulator, so
# this runs on the emulator flavour (test-guest), like sealed-test and attested-test.
# A cluster to try by hand: PostgreSQL and three nodes on three emulated chips, a join, a failover and a step-down
# shown, then left running until Ctrl-C (scripts/ha/run_cluster.py).
run-cluster: test-guest
	VHSMD=$(BIN)/vhsmd VHSM=$(BIN)/vhsm python3 scripts/ha/run_cluster.py $(RUN_CLUSTER_ARGS)

HA_ROUNDS ?= 2
check-ha: test-guest
	scripts/ha-test.sh --self-test
	VHSMD=$(BIN)/vhsmd VHSM=$(BIN)/vhsm scripts/ha-test.sh --rounds $(HA_ROUNDS)
	VHSMD=$(BIN)/vhsmd VHSM=$(BIN)/vhsm python3 scripts/ha/hvac_pg.py
	VHSMD=$(BIN)/vhsmd VHSM=$(BIN)/vhsm python3 scripts/ha/restore_test.py
	VHSMD=$(BIN)/vhsmd VHSM=$(BIN)/vhsm scripts/cluster-join-test.sh

# The guest program: vhsm-guest, one binary that is vhsm-init as /init and vhsmd through the link
# /usr/bin/vhsmd -> /init; release build, the emulator flavour (trait Emulator) for the QEMU tier.
# Built as one sealed link unit: full LTO, public symbols internalised at link time (no other Swift code ever
# links against the guest) and conditional runtime records (a protocol conformance is kept only if its type and
# its protocol are), so the linker drops what the guest never uses, such as X509's CMS and OCSP code:
# 21.8 -> 15.0 MB stripped. Each flavour has its own scratch path, so these flags never touch .build.
GUEST_BUILD = -c release --experimental-lto-mode=full --product vhsm-guest \
	-Xswiftc -Xfrontend -Xswiftc -internalize-at-link -Xswiftc -Xfrontend -Xswiftc -conditional-runtime-records
EMU_REL = .build-emulator/release
guest: deps
	$(SWIFT) build $(GUEST_BUILD) --traits Emulator --scratch-path .build-emulator

# The emulator-flavour initramfs (a separately named artifact) with the operator's recovery public key, in
# vhsm-init's config as recovery_key and in vhsmd's as operator_key (out/recovery-key.pem, the private key, is made
# once and stays on this machine: 'vhsm operator init URL --key out/recovery-key.pem' opens the root token). zstd level: 22 (--ultra, the smallest) for
# 'make initramfs', 9 for 'make image'/'make run', which rebuild it every time.
INITRAMFS_LEVEL ?= 9
out/recovery-key.pem:
	mkdir -p out
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out $@ 2>/dev/null && chmod 600 $@
initramfs-emulator: guest out/recovery-key.pem
	scripts/guest-config.py initramfs/init-emulator.json out/recovery-key.pem >out/init-emulator.json
	scripts/guest-config.py --vhsmd initramfs/vhsmd-emulator.json out/recovery-key.pem >out/vhsmd-emulator.json
	initramfs/build --init $(EMU_REL)/vhsm-guest --symlink /usr/bin/vhsmd=/init --bin /sbin/mke2fs \
		--file out/init-emulator.json=/etc/vhsm/init.json --file out/vhsmd-emulator.json=/etc/vhsm/vhsmd.json \
		--strip --level $(INITRAMFS_LEVEL) -o out/initrd-emulator.img --list out/initrd-emulator.list

# The production initramfs (sev-guest only, no emulator code) and the emulator flavour, both at zstd -22.
initramfs: INITRAMFS_LEVEL = 22
initramfs: initramfs-emulator out/recovery-key.pem
	$(SWIFT) build $(GUEST_BUILD) --scratch-path .build-guest
	scripts/guest-config.py initramfs/init.json out/recovery-key.pem >out/init.json
	scripts/guest-config.py --vhsmd initramfs/vhsmd.json out/recovery-key.pem >out/vhsmd.json
	initramfs/build --init .build-guest/release/vhsm-guest --symlink /usr/bin/vhsmd=/init --bin /sbin/mke2fs \
		--file out/init.json=/etc/vhsm/init.json --file out/vhsmd.json=/etc/vhsm/vhsmd.json \
		--strip --level $(INITRAMFS_LEVEL) -o out/initrd.img --list out/initrd.list

# A blank data disk (kept if it exists) and the launch manifest with the expected MEASUREMENT.
image: build initramfs-emulator
	@[ -e out/disk.img ] || image/make-disk out/disk.img
	VHSM=$(BIN)/vhsm TESTDATA=$(TESTDATA) image/manifest --initrd out/initrd-emulator.img -o out/manifest.json

# Boots the emulated confidential VM in QEMU (TCG) through the scenarios of issue 5, with the guest binary that
# 'make image' and 'make run' ship: the release build of the emulator flavour, linked as one sealed unit.
check-qemu: test-guest guest
	VHSM=$(BIN)/vhsm GUEST_BIN=$(EMU_REL) TESTDATA=$(TESTDATA) scripts/check-qemu.sh

# Power cuts during first-boot provisioning (issue 16): kill -9 of QEMU at each point of a first boot (after the
# header, the keyslot, the token; during mkfs, the integrity wipe, vhsmd's first writes), then a boot that must
# finish provisioning, or unlock a volume that was ready; another chip's mark or token is refused. Prints a matrix.
powercut-test: test-guest guest
	VHSM=$(BIN)/vhsm GUEST_BIN=$(EMU_REL) TESTDATA=$(TESTDATA) scripts/powercut-provision-test.sh

# Power cut under write load: a host-side client writes KV secrets and transit keys through the forwarded port and
# records every acknowledged write; QEMU is killed with SIGKILL at a random moment (POWERCUT_ROUNDS times, a seed
# printed); every acknowledged write must read back after the next boot. The disk is attached with cache=writeback.
POWERCUT_ROUNDS ?= 3
powercut-load-test: test-guest guest
	VHSM=$(BIN)/vhsm GUEST_BIN=$(EMU_REL) TESTDATA=$(TESTDATA) ROUNDS=$(POWERCUT_ROUNDS) scripts/powercut-load-test.sh

# The HTTP API under schemathesis 4.32.5, driven by vhsmd's own OpenAPI document (every engine mounted): no 5xx, no
# undocumented status, content type or body, no request over 10 s, vhsmd alive and healthy after. SCHEMA_EXAMPLES
# examples per operation (20 here, about a minute; 'make schema-fuzz' runs SCHEMA_FUZZ_EXAMPLES).
SCHEMA_EXAMPLES ?= 20
SCHEMA_FUZZ_EXAMPLES ?= 300
schema-test: build
	VHSMD=$(BIN)/vhsmd SCHEMA_EXAMPLES=$(SCHEMA_EXAMPLES) scripts/schema-test.sh
schema-fuzz: build
	VHSMD=$(BIN)/vhsmd SCHEMA_EXAMPLES=$(SCHEMA_FUZZ_EXAMPLES) scripts/schema-test.sh

# The listener's limits under attack: slowloris, bodies at and past each limit, deep nesting, an oversized head, a
# connection flood, nonce and wrapping-token floods, while a client encrypts (p99 per attack) and RSS is sampled.
attack-test: build
	VHSMD=$(BIN)/vhsmd scripts/attack-test.sh

test: lint unit-test cli-test readme-exit-test deb-test measure-test hvac-test oidc-test sealed-test faults-test attested-test login-test check-qemu \
	powercut-test powercut-load-test schema-test attack-test check-ha

# Fuzzing (issue 16): every attacker-facing parser under libFuzzer with AddressSanitizer, in one binary (vhsm-fuzz)
# that exists only in this build (VHSM_FUZZ=1 adds it to the manifest) and in its own scratch path. `make fuzz` runs
# each target FUZZ_SECONDS (60) and writes out/fuzz.csv; `make fuzz-smoke` runs each FUZZ_SMOKE_SECONDS (10).
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 10
# swiftc keeps only the last of several -sanitize= flags, so SwiftPM's "--sanitize=fuzzer --sanitize=address" compiles
# Swift with AddressSanitizer but without libFuzzer's coverage (only the C code was instrumented): the coverage
# libFuzzer needs is asked for explicitly.
FUZZ_BUILD = VHSM_FUZZ=1 $(SWIFT) build --sanitize=fuzzer --sanitize=address \
	-Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp --scratch-path .build-fuzz --product vhsm-fuzz
fuzz-build: deps
	$(FUZZ_BUILD)

fuzz: fuzz-build
	FUZZ_BIN=.build-fuzz/debug/vhsm-fuzz VHSM_TESTDATA=$(TESTDATA) FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

fuzz-smoke: fuzz-build
	FUZZ_BIN=.build-fuzz/debug/vhsm-fuzz VHSM_TESTDATA=$(TESTDATA) FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS) \
		FUZZ_CSV=out/fuzz-smoke.csv scripts/fuzz.sh

# fuzz-smoke is not in 'test': a clean sanitized build takes 17-23 min on 2 cores. 'swift test' (FuzzSmokeTests) runs
# every target on its seeds and 300 fixed-seed mutations of them instead, without coverage guidance.

run: image
	VHSM=$(BIN)/vhsm scripts/run-vm.sh

# The key service is benchmarked as it ships: the production guest binary, started under the name vhsmd. Attested
# TLS needs a Secure Processor: its benchmark runs the emulator flavour of the same release guest binary.
bench: deps image
	$(SWIFT) build -c release
	$(SWIFT) build -c release --static-swift-stdlib --scratch-path .build-static --product vhsm
	VHSM=$$($(SWIFT) build -c release --show-bin-path)/vhsm BENCH=$$($(SWIFT) build -c release --show-bin-path)/vhsm-bench \
		STATIC_VHSM=.build-static/release/vhsm TESTDATA=$(TESTDATA) scripts/bench.sh
	$(SWIFT) build $(GUEST_BUILD) --scratch-path .build-guest
	mkdir -p out/bench-bin && ln -sf $(abspath .build-guest/release/vhsm-guest) out/bench-bin/vhsmd
	VHSMD=out/bench-bin/vhsmd BENCH_BIN=$$($(SWIFT) build -c release --show-bin-path)/vhsm-bench scripts/bench-vhsmd.sh
	mkdir -p out/bench-bin-emulator && ln -sf $(abspath $(EMU_REL)/vhsm-guest) out/bench-bin-emulator/vhsmd
	VHSM=$$($(SWIFT) build -c release --show-bin-path)/vhsm VHSMD=out/bench-bin-emulator/vhsmd scripts/bench-attest.sh
	VHSM=$$($(SWIFT) build -c release --show-bin-path)/vhsm VHSMD=out/bench-bin-emulator/vhsmd \
		BENCH=$$($(SWIFT) build -c release --show-bin-path)/vhsm-bench TESTDATA=$(TESTDATA) scripts/bench-login.sh
	VHSM=$(BIN)/vhsm scripts/bench-boot.sh 3
	$(MAKE) bench-ha

# HA on PostgreSQL (issue 17): vhsmd's three nodes against OpenBao 2.7.2's two on the same throwaway PostgreSQL 15,
# in one run: kill -9 and step-down failover (BENCH_HA_TRIALS, median), then transit encrypt and KV write/read at 16
# connections through the active and through a standby. The nodes seal with `vhsm emulator serve`, so vhsmd and vhsm
# are built with the Emulator trait, in a scratch path of their own. Figures on stdout and in out/bench-ha.json.
BENCH_HA_TRIALS ?= 5
BENCH_HA_SECONDS ?= 10
HA_REL = .build-ha/release
bench-ha: deps
	$(SWIFT) build -c release --traits Emulator --scratch-path .build-ha --product vhsmd
	$(SWIFT) build -c release --traits Emulator --scratch-path .build-ha --product vhsm
	VHSMD=$(HA_REL)/vhsmd VHSM=$(HA_REL)/vhsm python3 scripts/bench-ha.py --trials $(BENCH_HA_TRIALS) \
		--seconds $(BENCH_HA_SECONDS)

format:
	$(SWIFT) format --in-place --recursive Sources Tests Package.swift

lint: deps
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift

clean:
	rm -rf .build .build-* out
