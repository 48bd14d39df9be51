# Sourced by the QEMU tiers (check-qemu, powercut-provision-test, powercut-load-test): one way to make the test
# initramfs and manifest, boot the emulated confidential VM through image/launch, read its console, cut its power
# and count checks.
#
# The sourcing script sets `here` (the repository), VHSM and GUEST_BIN (made absolute here), then calls
# `qemu_begin NAME`: $work (a new temporary directory; KEEP=1 keeps it), $run (the launcher's run directory), $port
# and $url (the forwarded vhsmd), the operator's recovery key ($work/recovery-key.pem) and vhsmd's configuration
# carrying it as operator_key ($work/vhsmd-base.json). The VM is stopped at exit, then `qemu_cleanup_hook` runs when
# the script defines it. `check NAME 'COMMAND'` counts; `qemu_end` prints the tally and returns its status.

VHSM=$(realpath "${VHSM:?}")
GUEST_BIN=$(realpath "${GUEST_BIN:?}")
export TESTDATA=${TESTDATA:-$here/../shared/testdata}
export VHSM

qemu_begin() {
  qemu_name=$1
  work=$(mktemp -d "/tmp/vhsm-$1.XXXXXX")
  run=$work/run
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  url=https://127.0.0.1:$port
  passed=0
  failed=0
  started=$(date +%s)
  trap qemu_cleanup EXIT
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$work/recovery-key.pem" 2>/dev/null
  # vhsmd's configuration carries the same public key as operator_key: root tokens leave the VM only sealed to it.
  "$here/scripts/guest-config.py" --vhsmd "$here/initramfs/vhsmd-emulator.json" "$work/recovery-key.pem" \
    >"$work/vhsmd-base.json"
}

qemu_cleanup() {
  declare -F qemu_cleanup_hook >/dev/null && qemu_cleanup_hook
  "$here/image/launch" stop --run-dir "$run" >/dev/null 2>&1
  if [ -n "${KEEP:-}" ]; then echo "$qemu_name: kept $work"; else rm -rf "$work"; fi
}

check() { if eval "$2"; then passed=$((passed + 1)); echo "  ok   $1"; else failed=$((failed + 1)); echo "  FAIL $1"; fi; }
say() { echo "$qemu_name: $*"; }
digest() { sha256sum "$1" | cut -d' ' -f1; }

# qemu_initrd NAME VHSMD_JSON [guest-config KEY=JSON ...] [-- initramfs/build options ...]: $work/initrd-NAME.img,
# vhsm-init's configuration from initramfs/init-emulator.json with the recovery key (exits the script on failure).
qemu_initrd() {
  local name=$1 vhsmd_json=$2 config=() build=()
  shift 2
  while [ $# -gt 0 ]; do
    if [ "$1" = -- ]; then
      shift
      build=("$@")
      break
    fi
    config+=("$1")
    shift
  done
  "$here/scripts/guest-config.py" "$here/initramfs/init-emulator.json" "$work/recovery-key.pem" "${config[@]}" \
    >"$work/init-$name.json"
  "$here/initramfs/build" --init "$GUEST_BIN/vhsm-guest" --symlink /usr/bin/vhsmd=/init --bin /sbin/mke2fs \
    --file "$work/init-$name.json=/etc/vhsm/init.json" --file "$vhsmd_json=/etc/vhsm/vhsmd.json" \
    --strip --level 3 "${build[@]}" -o "$work/initrd-$name.img" 2>"$work/initrd-$name.log" ||
    { cat "$work/initrd-$name.log"; exit 1; }
}

# qemu_manifest INITRD: $work/manifest.json, the launch manifest with the expected MEASUREMENT (exits on failure).
qemu_manifest() {
  "$here/image/manifest" --initrd "$1" -o "$work/manifest.json" >/dev/null ||
    { say "cannot write the manifest"; exit 1; }
}

# boot NAME DISK STATE [launch options]: starts the VM in the background with the emulated chip in $work/STATE; the
# console goes to $work/NAME.log ($console).
boot() {
  local name=$1 disk=$2 state=$3
  shift 3
  "$here/image/launch" stop --run-dir "$run" >/dev/null 2>&1
  console=$work/$name.log
  "$here/image/launch" start --manifest "$work/manifest.json" --disk "$disk" --state "$work/$state" --port "$port" \
    --run-dir "$run" --console "$console" --background --quiet "$@" >"$work/$name.launch" 2>&1 ||
    { cat "$work/$name.launch"; return 1; }
}
wait_for() { "$here/image/launch" wait --run-dir "$run" --pattern "$1" --timeout "${2:-300}" >/dev/null; }
wait_ready() { wait_for 'vhsmd: ready on'; }
wait_exit() { "$here/image/launch" wait --run-dir "$run" --exit --timeout 300 >/dev/null; }
powerdown() { "$here/image/launch" powerdown --run-dir "$run" --timeout 90 >/dev/null 2>&1; }
# The power cut: SIGKILL to QEMU (no shutdown, no flush), then the launcher's supervisor and emulator stop.
cut_power() { "$here/image/launch" kill --run-dir "$run" >/dev/null 2>&1; }
has() { grep -aq -- "$1" "$console"; }
# The fingerprint of vhsmd's certificate as the console printed it (informative only: the host writes the console).
printed() { grep -ao 'fingerprint [0-9A-F:]*' "$console" | tail -1 | cut -d' ' -f2; }

qemu_end() {
  echo "$qemu_name: $passed passed, $failed failed ($(($(date +%s) - started)) s)"
  [ "$failed" = 0 ]
}
