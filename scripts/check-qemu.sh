#!/usr/bin/env bash
# The QEMU tier: the real Debian kernel, our initramfs (vhsm-init + vhsmd, emulator flavour) and a data disk, booted
# under qemu-system-x86_64 (TCG) with the software Secure Processor on a virtio-serial port. Each scenario asserts
# console lines and host-side effects (the disk's bytes, what vhsmd answers on the forwarded port):
#   1 first boot formats, enrols and starts vhsmd (unprivileged, seccomp, its barrier keys handed over by vhsm-init,
#     no access to the Secure Processor); make run's path: 'vhsm server verify --manifest' proves vhsmd's TLS key is
#     in the VM with the manifest's MEASUREMENT (the console's fingerprint is only compared, never trusted), then
#     sys/init over the verified certificate; a TLS man in the middle is refused with both SPKI hashes; a transit
#     key is created over HTTPS
#   2 a reboot with the same inputs unlocks; the key is still there and decrypts what it encrypted
#   3 one byte of one initramfs file changed: unlock refused with expected vs actual MEASUREMENT, disk unchanged
#   4 another chip: refused, disk unchanged
#   5 the header tampered on the host (cipher_null segment; separately a broken token MAC): refused before any key
#   6 recovery: 'vhsm volume recover' with the operator's private key proves the recovery key opens the volume;
#     6b moving to another chip: the refused boot prints a request, 'vhsm volume reenroll' writes the grant, the
#     next boot re-enrolls, vhsmd waits sealed, 'vhsm operator recover' moves its store, old ciphertext decrypts
#   7 image seal: a changed initramfs signed with the same ID key/family/image at a higher SVN unlocks; a lower
#     SVN is refused
#   8 the ACPI power button stops vhsmd, closes the volume and powers off; the next boot mounts a clean filesystem;
#     Ctrl-Alt-Del (SIGINT to PID 1) does the same
# and: a foreign (non-blank, non-LUKS) disk and a bad kernel command line are refused; the platform seal, and the
# volume named by vhsm.volume=UUID=… (an unknown UUID is refused), and a changed initramfs on that platform-sealed
# volume: it unlocks and vhsmd serves, but 'vhsm server verify' against the manifest refuses it; hmac(sha256) integrity formats,
# wipes once with progress and unlocks again; switch_root into a dm-verity root filesystem on a second disk (without
# a root hash on the measured command line it is refused; one changed byte in the root stops the boot at the
# hand-off); two initramfs builds are byte-identical.
# Usage: VHSM=.build/debug/vhsm GUEST_BIN=<folder with vhsm-guest built with the Emulator trait>
#        scripts/check-qemu.sh
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/lib/qemu-env.sh"
qemu_begin check-qemu

# ---- artifacts ---------------------------------------------------------------------------------------------------
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$work/id-key.pem" 2>/dev/null
qemu_initrd base "$work/vhsmd-base.json"
cp "$work/initrd-base.img" "$work/initrd-first-build.img"
qemu_initrd base "$work/vhsmd-base.json"
check "two initramfs builds from the same inputs are byte-identical" \
  'cmp -s "$work/initrd-base.img" "$work/initrd-first-build.img"'
# The same initramfs with one byte of one file changed (a space in vhsmd.json becomes a tab: still valid JSON).
python3 -c 'import sys; t = open(sys.argv[1]).read(); i = t.index(" "); open(sys.argv[2], "w").write(t[:i] + "\t" + t[i + 1:])' \
  "$work/vhsmd-base.json" "$work/vhsmd-changed.json"
qemu_initrd changed "$work/vhsmd-changed.json"
say "initramfs $(du -h "$work/initrd-base.img" | cut -f1) (zstd -3 for the tests; 'make initramfs' uses -22)"
qemu_manifest "$work/initrd-base.img"

# vhsmd's certificate is self-signed inside the VM; trust it when its SHA-256 matches the fingerprint on the console.
pin() {
  local printed served
  printed=$(grep -ao 'fingerprint [0-9A-F:]*' "$console" | tail -1 | cut -d' ' -f2)
  served=$(openssl s_client -connect "127.0.0.1:$port" </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 |
    cut -d= -f2)
  [ -n "$printed" ] && [ "$printed" = "$served" ]
}
api() { curl -sk --max-time 20 -H "X-Vault-Token: ${token:-}" "$@"; }
# operator COMMAND: 'vhsm operator COMMAND' against the VM with the operator's key, trusting the printed fingerprint;
# prints the opened root token.
operator() {
  "$VHSM" operator "$1" "$url" --key "$work/recovery-key.pem" --fingerprint "$(printed)" --json 2>>"$work/operator.err" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])' 2>/dev/null
}
is_root() { [ -n "$1" ] && curl -sk --max-time 20 -H "X-Vault-Token: $1" "$url/v1/auth/token/lookup-self" | grep -q '"root"'; }
# attest URL MANIFEST [options]: 'vhsm server verify' as make run calls it, trusting the emulator's root by name; the
# JSON verdict goes to $work/attest.json.
attest() {
  local target=$1 manifest=$2
  shift 2
  "$VHSM" server verify "$target" --manifest "$manifest" --trust-emulator-root "$work/chip-certs/ark.pem" --json "$@" \
    >"$work/attest.json" 2>"$work/attest.err"
}
verdict() { python3 -c 'import json,sys; v = json.load(open(sys.argv[1])); print(v[sys.argv[2]])' "$work/attest.json" "$1"; }

# ---- 1: first boot -------------------------------------------------------------------------------------------------
say "1: first boot on a blank disk"
"$here/image/make-disk" "$work/disk.img" 64M >/dev/null
boot first "$work/disk.img" chip && wait_ready
check "vhsm-init formatted and enrolled the blank volume" 'has "is blank: formatting LUKS2" && has "enrolled as /dev/mapper/"'
check "the recovery blob was printed once for the operator" '[ "$(grep -ac "BEGIN VHSM RECOVERY" "$console")" = 1 ]'
check "stage times are printed" 'has "vhsm-init: attest " && has "vhsm-init: volume "'
check "vhsmd serves HTTPS with the fingerprint printed on the console" 'pin'
"$VHSM" emulator certs --state "$work/chip" --out "$work/chip-certs" >/dev/null
check "make run's path: vhsm server verify --manifest trusts vhsmd (genuine, bound to this TLS key, MEASUREMENT)" \
  'attest "$url" "$work/manifest.json" --ca-out "$work/vhsmd-cert.pem" && [ "$(verdict trusted)" = True ] &&
   [ "$(verdict fresh)" = True ]'
vhsmd_spki=$(verdict spki_sha256)
check "the certificate verified by attestation is the one whose fingerprint the console printed (informative only)" \
  '[ "$(openssl x509 -noout -fingerprint -sha256 -in "$work/vhsmd-cert.pem" | cut -d= -f2)" = "$(printed)" ]'
check "the emulator's root is not trusted unless named" \
  '! "$VHSM" server verify "$url" --manifest "$work/manifest.json" >"$work/unnamed.out" 2>&1 &&
   grep -q "not genuine" "$work/unnamed.out"'
# The host as a TLS man in the middle: its own key, everything (sys/attestation included) forwarded to vhsmd.
python3 "$here/scripts/mitm-proxy.py" "127.0.0.1:$port" >"$work/mitm.log" 2>&1 &
mitm=$!
for _ in $(seq 100); do grep -q "listening on" "$work/mitm.log" && break; sleep 0.1; done
mitm_port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$work/mitm.log" | cut -d: -f2)
mitm_spki=$(grep -o 'SPKI SHA-256 [0-9a-f]*' "$work/mitm.log" | cut -d' ' -f3)
check "a TLS man in the middle is refused, naming the handshake's SPKI hash and the one the report binds" \
  '! attest "https://127.0.0.1:$mitm_port" "$work/manifest.json" && [ "$(verdict trusted)" = False ] &&
   [ "$(verdict genuine)" = True ] && [ "$(verdict bound)" = False ] &&
   grep -q "$mitm_spki" "$work/attest.json" && grep -q "$vhsmd_spki" "$work/attest.json"'
kill "$mitm" 2>/dev/null
wait "$mitm" 2>/dev/null
check "vhsmd runs as 8200:8200 with no_new_privs and seccomp, its keys handed over by vhsm-init, without the device" \
  'has "as uid:gid 8200:8200, no_new_privs, seccomp filter, handoff on fd 3" &&
   has "privileges: uid 8200 gid 8200, NoNewPrivs 1, Seccomp 2 (filter); barrier key from vhsm-init (fd 3)" &&
   has "/dev/vport0p1 not accessible"'
# sys/init over the certificate that attestation verified, as make run does.
token=$("$VHSM" operator init "$url" --key "$work/recovery-key.pem" --cacert "$work/vhsmd-cert.pem" --json \
  2>>"$work/operator.err" | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])' 2>/dev/null)
check "vhsm operator init over the verified certificate opens the root token sealed to the operator key" 'is_root "$token"'
generated=$(operator generate-root)
check "vhsm operator generate-root mints another root token, sealed to the operator key" \
  'is_root "$generated" && [ "$generated" != "$token" ]'
api -X POST -d '{"type":"transit"}' "$url/v1/sys/mounts/transit" >/dev/null
api -X POST "$url/v1/transit/keys/sealed" >/dev/null
ciphertext=$(api -X POST -d '{"plaintext":"c2VhbGVkIGJvb3Q="}' "$url/v1/transit/encrypt/sealed" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["ciphertext"])' 2>/dev/null)
check "a transit key was created and encrypts over HTTPS" '[[ "$ciphertext" == vault:v1:* ]]'
# 8 (first half): the ACPI power button.
powerdown
status=$?
check "8: the power button powered the VM off cleanly" '[ "$status" = 0 ]'
check "8: vhsmd was stopped and the volume closed before power-off" \
  'has "shutdown: stopping" && has "vhsmd: stopped" && has "shutdown: unmount" && has "shutdown: close"'
check "the volume verifies on the host (vhsm volume inspect)" '"$VHSM" volume inspect "$work/disk.img" >/dev/null'

# ---- 2: reboot -----------------------------------------------------------------------------------------------------
say "2: reboot with the same inputs"
boot second "$work/disk.img" chip && wait_ready
check "the volume was unlocked, not formatted" '! has "is blank" && has "unlocked as /dev/mapper/"'
check "8: the filesystem needed no journal recovery after the power button" '! has "recovery complete"'
plain=$(api -X POST -d "{\"ciphertext\":\"$ciphertext\"}" "$url/v1/transit/decrypt/sealed" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["plaintext"])' 2>/dev/null)
check "the key survived the reboot and decrypts what it encrypted" '[ "$plain" = c2VhbGVkIGJvb3Q= ]'
powerdown
before=$(digest "$work/disk.img")

# ---- 3: one byte of the initramfs changed --------------------------------------------------------------------------
say "3: one byte of one initramfs file changed (measurement seal)"
boot changed "$work/disk.img" chip --initrd "$work/initrd-changed.img" && wait_exit
check "unlock refused with expected and actual MEASUREMENT" 'has "volume failed" && has "MEASUREMENT" && has "next:"'
check "the disk's bytes are unchanged" '[ "$(digest "$work/disk.img")" = "$before" ]'
check "the VM halted (no vhsmd)" '! has "vhsmd: ready"'

# ---- 4: another chip -----------------------------------------------------------------------------------------------
say "4: the same VM on another chip"
boot other-chip "$work/disk.img" other && wait_exit
check "refused on another chip" 'has "volume failed" && ! has "vhsmd: ready"'
check "the disk's bytes are unchanged" '[ "$(digest "$work/disk.img")" = "$before" ]'

# ---- 5: the header tampered on the host ----------------------------------------------------------------------------
for mode in cipher-null break-mac; do
  say "5: header tampered on the host: $mode"
  cp --sparse=always "$work/disk.img" "$work/disk-$mode.img"
  python3 "$here/scripts/luks-tamper.py" "$work/disk-$mode.img" "$mode" >/dev/null
  tampered=$(digest "$work/disk-$mode.img")
  boot "tamper-$mode" "$work/disk-$mode.img" chip && wait_exit
  case $mode in
    cipher-null) check "a cipher_null segment is refused by the header validation" 'has "cipher_null" && has "volume failed"' ;;
    break-mac) check "a broken token MAC is refused" 'has "volume failed" && grep -aqi "mac" "$console"' ;;
  esac
  check "refused before any key was used (no unlock, no vhsmd)" '! has "unlocked as" && ! has "vhsmd: ready"'
  check "the tampered disk was not written" '[ "$(digest "$work/disk-$mode.img")" = "$tampered" ]'
  case $mode in
    cipher-null) check "vhsm volume inspect refuses it on the host too (exit 1)" \
      '"$VHSM" volume inspect "$work/disk-$mode.img" >/dev/null 2>&1; [ $? = 1 ]' ;;
    break-mac) check "on the host the MAC cannot be checked without the sealing key, and inspect says so" \
      '"$VHSM" volume inspect "$work/disk-$mode.img" | grep -q "(checked at unlock)"' ;;
  esac
done

# ---- bad input: a non-blank disk that is not LUKS, a malformed kernel command line -----------------------------
say "bad input: foreign data on the disk; an unknown vhsm.* key on the command line"
"$here/image/make-disk" "$work/disk-foreign.img" 64M >/dev/null
printf 'precious data that is not LUKS' | dd of="$work/disk-foreign.img" bs=1 seek=1048576 conv=notrunc status=none
foreign=$(digest "$work/disk-foreign.img")
boot foreign "$work/disk-foreign.img" chip && wait_exit
check "a non-blank disk without LUKS2 is refused, never formatted" 'has "volume failed" && ! has "is blank"'
check "the foreign disk's bytes are unchanged" '[ "$(digest "$work/disk-foreign.img")" = "$foreign" ]'
cmdline=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cmdline"]["value"])' "$work/manifest.json")
boot bad-cmdline "$work/disk.img" chip --append "$cmdline vhsm.sael=image" && wait_exit
check "an unknown vhsm.* key is one config failure line with a hint, then halt" \
  'has "vhsm-init: config failed:" && has "sael" && has "next:" && ! has "vhsmd: ready"'
check "the disk's bytes are unchanged" '[ "$(digest "$work/disk.img")" = "$before" ]'

# first_boot NAME DISK WORDS: a fresh blank 64 MiB DISK, booted with WORDS added to the command line until vhsmd is up.
first_boot() {
  "$here/image/make-disk" "$2" 64M >/dev/null
  boot "$1" "$2" chip --append "$cmdline $3" && wait_ready
}

# ---- the volume named by its LUKS UUID -----------------------------------------------------------------------------
# The command line is part of the launch measurement, so this runs on a volume enrolled with the platform seal:
# first boot with the default /dev/vda, then boots that name the volume by UUID on the command line.
say "platform seal, and the volume named by UUID= on the kernel command line"
first_boot uuid-first "$work/disk-uuid.img" vhsm.seal=platform
check "a first boot with vhsm.seal=platform enrols the volume with the platform seal" \
  'has "is blank: formatting LUKS2" && has "seal platform"'
powerdown
uuid=$("$VHSM" volume inspect "$work/disk-uuid.img" --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["uuid"])')
enrolled=$(digest "$work/disk-uuid.img")
boot wrong-uuid "$work/disk-uuid.img" chip \
  --append "$cmdline vhsm.seal=platform vhsm.volume=UUID=00000000-0000-4000-8000-000000000000" && wait_exit
check "an unknown UUID is one volume failure line naming the devices looked at, then halt" \
  'has "no block device holds LUKS UUID 00000000-0000-4000-8000-000000000000" && has "next:" && ! has "vhsmd: ready"'
check "the disk's bytes are unchanged" '[ "$(digest "$work/disk-uuid.img")" = "$enrolled" ]'
boot by-uuid "$work/disk-uuid.img" chip --append "$cmdline vhsm.seal=platform vhsm.volume=UUID=${uuid^^}" && wait_ready
check "vhsm.volume=UUID=<upper case> finds the enrolled volume among the block devices and unlocks it" \
  'has "unlocked as /dev/mapper/" && ! has "is blank"'
platform_cmdline="$cmdline vhsm.seal=platform vhsm.volume=UUID=${uuid^^}"
"$here/image/manifest" --initrd "$work/initrd-base.img" --append "$platform_cmdline" -o "$work/manifest-platform.json" \
  >/dev/null
check "vhsm server verify trusts this launch against its manifest (same initramfs and command line)" \
  'attest "$url" "$work/manifest-platform.json" && [ "$(verdict trusted)" = True ]'
# The signal path of an orderly shutdown: Ctrl-Alt-Del is SIGINT to PID 1 (vhsm-init disabled the kernel's reboot).
"$here/image/launch" powerdown --run-dir "$run" --ctrl-alt-del --timeout 90 >/dev/null 2>&1
status=$?
check "Ctrl-Alt-Del (SIGINT to PID 1) stops vhsmd, unmounts, closes the volume and powers off" \
  '[ "$status" = 0 ] && has "shutdown: SIGINT" && has "vhsmd: stopped" && has "shutdown: unmount" && has "shutdown: close"'
# The platform seal binds no image: a changed initramfs still unlocks the volume and vhsmd serves. Only the client's
# check of the launch against the manifest tells it apart.
boot platform-changed "$work/disk-uuid.img" chip --initrd "$work/initrd-changed.img" --append "$platform_cmdline" &&
  wait_ready
expected=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["measurement"])' "$work/manifest-platform.json")
check "a changed initramfs on the platform-sealed volume unlocks, and vhsmd serves" 'has "unlocked as /dev/mapper/"'
check "vhsm server verify refuses it against the manifest, with the expected and the actual MEASUREMENT" \
  '! attest "$url" "$work/manifest-platform.json" && [ "$(verdict trusted)" = False ] && [ "$(verdict genuine)" = True ] &&
   [ "$(verdict bound)" = True ] && grep -q "MEASUREMENT" "$work/attest.json" && grep -q "$expected" "$work/attest.json" &&
   [ "$(verdict measurement)" != "$expected" ]'
powerdown

# ---- integrity ----------------------------------------------------------------------------------------------------
say "integrity: a first boot with vhsm.integrity formats with hmac(sha256), wipes once, and a reboot unlocks"
first_boot integrity-first "$work/disk-integrity.img" vhsm.integrity
check "formatted with integrity hmac(sha256) and the one-time wipe reported its progress" \
  'has "integrity hmac(sha256)" && has "integrity wipe 100%" && has "enrolled as"'
powerdown
boot integrity-second "$work/disk-integrity.img" chip --append "$cmdline vhsm.integrity" && wait_ready
check "the integrity-protected volume unlocks on the next boot" 'has "unlocked as" && ! has "is blank"'
powerdown
check "the host sees the integrity segment (vhsm volume inspect)" \
  '"$VHSM" volume inspect "$work/disk-integrity.img" | grep -q "integrity hmac(sha256)"'

# ---- switch_root ----------------------------------------------------------------------------------------------
say "switch_root: unlock and mount the volume, then switch into a dm-verity root on a second disk and exec its init"
mkdir -p "$work/newroot/bin" "$work/newroot/sbin" "$work/newroot/dev" "$work/newroot/proc" "$work/newroot/sys" \
  "$work/newroot/run" "$work/newroot/var/lib/vhsm"
cp "$(readlink -f /bin/busybox)" "$work/newroot/bin/busybox"
for tool in sh cat ls grep touch poweroff; do ln -sf busybox "$work/newroot/bin/$tool"; done
cat >"$work/newroot/sbin/init" <<'INIT'
#!/bin/sh
echo "newroot-init: running as pid $$"
grep -q ' /var/lib/vhsm ext4 ' /proc/mounts && echo "newroot-init: the sealed volume is mounted at /var/lib/vhsm"
grep -q '^/dev/mapper/vhsm-root / ext4 ro[, ]' /proc/mounts && echo "newroot-init: / is the verified root, read-only"
touch /written 2>/dev/null || echo "newroot-init: / cannot be written"
[ -e /init ] || echo "newroot-init: the initramfs is gone"
poweroff -f
INIT
chmod 755 "$work/newroot/sbin/init"
# 4096-byte filesystem blocks: the dm-verity device has 4096-byte sectors, and ext4 refuses smaller blocks there.
mke2fs -q -t ext4 -b 4096 -d "$work/newroot" "$work/root.img" 32M
# The hash tree goes right after the filesystem on the same disk; no verity superblock (vhsm-init reads none).
root_blocks=$(($(stat -c %s "$work/root.img") / 4096))
veritysetup=$(command -v veritysetup || echo /usr/sbin/veritysetup)
"$veritysetup" format --no-superblock --hash-offset=$((root_blocks * 4096)) "$work/root.img" "$work/root.img" \
  >"$work/root.verity" 2>&1
root_hash=$(awk '$1 == "Root" && $2 == "hash:" {print $3}' "$work/root.verity")
root_salt=$(awk '$1 == "Salt:" {print $2}' "$work/root.verity")
check "veritysetup format hashed the root image (root hash, salt, $root_blocks data blocks)" \
  '[ ${#root_hash} = 64 ] && [ ${#root_salt} = 64 ] && grep -q "^Data blocks:[[:space:]]*$root_blocks\$" "$work/root.verity"'
# The same image with ONE changed byte inside /sbin/init's data block (which exec reads, as does vhsm-init's
# read-through of the whole verified device): the hash tree is unchanged.
cp "$work/root.img" "$work/root-changed.img"
changed_at=$(python3 -c '
import sys
data = open(sys.argv[1], "rb").read()
at = data.index(b"newroot-init: running as pid")
print(at if at < int(sys.argv[2]) * 4096 else -1)' "$work/root.img" "$root_blocks")
printf 'R' | dd of="$work/root-changed.img" bs=1 seek="$changed_at" conv=notrunc status=none
check "the changed image differs from the hashed one in exactly one byte, inside the data area" \
  '[ "$changed_at" -ge 0 ] && [ "$(cmp -l "$work/root.img" "$work/root-changed.img" | wc -l)" = 1 ]'
# root_disk IMAGE: the launch options that attach IMAGE as the second virtio disk, /dev/vdb.
root_disk() { disk_args=(--qemu-arg=-drive --qemu-arg="file=$1,if=none,format=raw,id=root"
  --qemu-arg=-device --qemu-arg=virtio-blk-pci,drive=root,addr=0x9); }
switch="vhsm.handoff=switch_root vhsm.handoff.root=/dev/vdb"
verity="vhsm.handoff.root_hash=$root_hash vhsm.handoff.root_salt=$root_salt vhsm.handoff.root_data_blocks=$root_blocks"
# A fresh data disk: the command line is measured, so the disk enrolled above would (rightly) be refused.
"$here/image/make-disk" "$work/disk-switch.img" 64M >/dev/null
blank=$(digest "$work/disk-switch.img")
root_disk "$work/root.img"
boot switch-no-hash "$work/disk-switch.img" chip --append "$cmdline $switch" "${disk_args[@]}" && wait_exit
check "switch_root without a root hash is one config failure line naming handoff.root_hash, then halt" \
  'has "vhsm-init: config failed: handoff.mode '"'"'switch_root'"'"' into /dev/vdb needs handoff.root_hash" &&
   has "next:" && ! has "newroot-init"'
check "refused before the volume was touched (the blank disk is unchanged)" \
  '[ "$(digest "$work/disk-switch.img")" = "$blank" ]'
boot switch-root "$work/disk-switch.img" chip --append "$cmdline $switch $verity" "${disk_args[@]}" && wait_exit
check "vhsm-init verified the root through dm-verity with the root hash from the command line" \
  'has "enrolled as" && has "/dev/vdb verified by dm-verity (root hash $root_hash"'
check "the new root's init runs as PID 1 with the unlocked volume mounted and the initramfs freed" \
  'has "newroot-init: running as pid 1" && has "sealed volume is mounted" && has "initramfs is gone"'
check "the new root is the read-only dm-verity device" \
  'has "newroot-init: / is the verified root, read-only" && has "newroot-init: / cannot be written"'
root_disk "$work/root-changed.img"
boot switch-changed "$work/disk-switch.img" chip --append "$cmdline $switch $verity" "${disk_args[@]}" && wait_exit
check "one changed byte in the root: the volume unlocks, then one handoff failure line with the configured root hash" \
  'has "unlocked as" && has "vhsm-init: handoff failed: dm-verity refused /dev/vdb" &&
   has "configured root hash $root_hash, the hash tree on /dev/vdb has root hash $root_hash (its top matches" &&
   has "next: the root image is not the one veritysetup format hashed"'
check "the kernel's dm-verity target named the corrupted block, and the changed init never ran" \
  'grep -aq "verity.*data block [0-9]* is corrupted" "$console" && ! has "newroot-init" && ! has "switch_root: exec"'

# ---- 6: recovery ---------------------------------------------------------------------------------------------------
say "6: recovery with the operator's private key"
check "vhsm volume recover proves the recovery key opens the volume" \
  '"$VHSM" volume recover "$work/disk.img" --recovery-key "$work/recovery-key.pem" >"$work/recover.out" 2>&1'
check "another private key cannot recover it" \
  '! "$VHSM" volume recover "$work/disk.img" --recovery-key "$work/id-key.pem" >/dev/null 2>&1'

# ---- 6b: moving to another chip -------------------------------------------------------------------------------------
say "6b: move the enrolled volume and vhsmd's store to another chip with the operator's key"
cp --sparse=always "$work/disk.img" "$work/disk-move.img"
boot move-request "$work/disk-move.img" other && wait_exit
check "another chip: refused, with a recovery request, its challenge, and a next: line naming vhsm volume reenroll" \
  'has "volume failed" && has "BEGIN VHSM RECOVERY REQUEST" && has "BEGIN VHSM RECOVERY CHALLENGE" && has "vhsm volume reenroll DISK"'
request_log=$console
measurement=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["measurement"])' "$work/manifest.json")
"$VHSM" emulator certs --state "$work/other" --out "$work/other-certs" >/dev/null
reenroll() {
  "$VHSM" volume reenroll "$work/disk-move.img" --recovery-key "$work/recovery-key.pem" --request "$request_log" \
    --trust-emulator-root "$work/other-certs/ark.pem" "$@"
}
check "vhsm volume reenroll refuses another MEASUREMENT and writes nothing" \
  'moved=$(digest "$work/disk-move.img"); ! reenroll --measurement "$(printf "cd%.0s" $(seq 48))" >/dev/null 2>&1 && [ "$(digest "$work/disk-move.img")" = "$moved" ]'
check "vhsm volume reenroll verifies the request and writes the grant into the header" \
  'reenroll --measurement "$measurement" >"$work/reenroll.out" 2>&1'
boot move-reenroll "$work/disk-move.img" other && wait_ready
check "the next boot on the other chip re-enrolls the volume with the grant and unlocks it" \
  'has "re-enrolled with the operator.s recovery grant" && ! has "is blank"'
check "vhsmd starts SEALED on the other chip and names vhsm operator recover" \
  'has "SEALED: this launch" && [ "$(curl -sk -o /dev/null -w "%{http_code}" "$url/v1/sys/health")" = 503 ]'
check "vhsm operator recover releases the escrowed barrier key to the new launch, and vhsmd unseals" \
  '"$VHSM" operator recover "$url" --key "$work/recovery-key.pem" --fingerprint "$(printed)" --measurement "$measurement" --trust-emulator-root "$work/other-certs/ark.pem" >"$work/recover-store.out" 2>&1 && [ "$(curl -sk -o /dev/null -w "%{http_code}" "$url/v1/sys/health")" = 200 ]'
plain=$(api -X POST -d "{\"ciphertext\":\"$ciphertext\"}" "$url/v1/transit/decrypt/sealed" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["plaintext"])' 2>/dev/null)
check "on the other chip the same transit key decrypts the ciphertext made on the first" '[ "$plain" = c2VhbGVkIGJvb3Q= ]'
powerdown
boot move-again "$work/disk-move.img" other && wait_ready
plain=$(api -X POST -d "{\"ciphertext\":\"$ciphertext\"}" "$url/v1/transit/decrypt/sealed" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["plaintext"])' 2>/dev/null)
check "the next boot on the other chip unlocks and unseals by itself" \
  'has "unlocked as" && ! has "re-enrolled" && ! has "SEALED" && [ "$plain" = c2VhbGVkIGJvb3Q= ]'
powerdown

# ---- 7: image seal -------------------------------------------------------------------------------------------------
say "7: image seal with ID blocks (family and image fixed, SVN changes)"
# vhsm-init seals the volume and vhsmd its barrier in image mode; the changed image differs by one byte.
python3 -c 'import json, sys; c = json.load(open(sys.argv[1])); c["seal_mode"] = "image"; json.dump(c, open(sys.argv[2], "w"), indent=1)' \
  "$work/vhsmd-base.json" "$work/vhsmd-image.json"
sed 's/"image"/ "image"/' "$work/vhsmd-image.json" >"$work/vhsmd-image-changed.json"
qemu_initrd image "$work/vhsmd-image.json" 'seal="image"'
qemu_initrd image-changed "$work/vhsmd-image-changed.json" 'seal="image"'
idblock() { # idblock NAME INITRD SVN: an ID block for that initrd's launch digest, signed with the one ID key
  local ld
  "$here/image/manifest" --initrd "$2" -o "$work/manifest-$1.json" >/dev/null
  ld=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["measurement"])' "$work/manifest-$1.json")
  "$VHSM" idblock create --measurement "$ld" --family-id 766873 --image-id 01 --svn "$3" --policy 0x30000 \
    --id-key "$work/id-key.pem" --out "$work/id-$1" >/dev/null
}
idblock image2 "$work/initrd-image.img" 2
idblock changed3 "$work/initrd-image-changed.img" 3
idblock changed1 "$work/initrd-image-changed.img" 1
"$here/image/make-disk" "$work/disk-image.img" 64M >/dev/null
boot image-first "$work/disk-image.img" chip --initrd "$work/initrd-image.img" --id-block "$work/id-image2" && wait_ready
check "an image-sealed volume was formatted at SVN 2 and vhsmd started" 'has "is blank: formatting LUKS2" && has "seal image" && pin'
# The host wins the first-boot race for sys/init here: its answer carries no root token, only the blob.
api -X PUT -d '{}' "$url/v1/sys/init" >"$work/host-init.json"
check "a sys/init answer carries no root_token, only root_token_sealed" \
  'python3 -c "import json,sys; a = json.load(open(sys.argv[1])); sys.exit(\"root_token\" in a or \"BEGIN VHSM ROOT TOKEN\" not in a[\"root_token_sealed\"])" "$work/host-init.json"'
token=$("$VHSM" operator open --key "$work/recovery-key.pem" --json "$work/host-init.json" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])' 2>/dev/null)
check "only the operator key opens it (vhsm operator open)" \
  'is_root "$token" && ! "$VHSM" operator open --key "$work/id-key.pem" "$work/host-init.json" >/dev/null 2>&1'
api -X POST -d '{"type":"kv","options":{"version":"2"}}' "$url/v1/sys/mounts/secret" >/dev/null
api -X POST -d '{"data":{"svn":"2"}}' "$url/v1/secret/data/release" >/dev/null
powerdown
boot image-update "$work/disk-image.img" chip --initrd "$work/initrd-image-changed.img" --id-block "$work/id-changed3" &&
  wait_ready
got=$(api "$url/v1/secret/data/release" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["data"]["svn"])' 2>/dev/null)
check "a changed initramfs signed with the same ID key at SVN 3 unlocks, and vhsmd reads its data" \
  '! has "is blank" && has "unlocked as" && [ "$got" = 2 ]'
powerdown
image_before=$(digest "$work/disk-image.img")
boot image-rollback "$work/disk-image.img" chip --initrd "$work/initrd-image-changed.img" --id-block "$work/id-changed1" &&
  wait_exit
check "the same image at SVN 1 (below the enrolled 2) is refused" 'has "volume failed" && ! has "vhsmd: ready"'
check "the disk's bytes are unchanged" '[ "$(digest "$work/disk-image.img")" = "$image_before" ]'

qemu_end
