#!/usr/bin/env bash
# make run: the emulated confidential VM on its embedded defaults. A fresh data disk, the software Secure
# Processor and the VM (out/manifest.json: Debian kernel + out/initrd-emulator.img); waits for vhsmd, verifies it by
# attestation (vhsm server verify --manifest out/manifest.json; the console's fingerprint is informative), calls sys/init through the forwarded port and opens the root
# token sealed to the operator key (vhsm operator init --key out/recovery-key.pem), prints the
# address and root token, does one transit encrypt/decrypt round trip, enables auth/sev-snp (trusting the emulated
# chip's root) and prints the one command that creates the role for this image (out/role.json from image/manifest
# --role-json), then keeps the VM running until Ctrl-C and powers it off with the ACPI power button (vhsmd stops, the volume closes).
# Without a terminal (CI, scripts) it stops after the round trip. Environment: VHSM, PORT (default 18200).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
VHSM=${VHSM:?}
export VHSM
port=${PORT:-18200}
out=$here/out
run=/tmp/vhsm-vm-$port
url=https://127.0.0.1:$port
launch=$here/image/launch
say() { echo "vhsm run: $*"; }

"$launch" stop --run-dir "$run" >/dev/null 2>&1
# The auth/sev-snp role for this image (its MEASUREMENT, allow_debug from its POLICY), for workload logins.
"$here/image/manifest" --from "$out/manifest.json" --role-json "$out/role.json" >/dev/null || exit 1
"$here/image/make-disk" --force "$out/disk.img" 64M >/dev/null
say "booting the emulated SEV-SNP VM (QEMU, TCG): console in $out/console.log"
"$launch" start --manifest "$out/manifest.json" --disk "$out/disk.img" --state "$out/emulator" --port "$port" \
  --run-dir "$run" --console "$out/console.log" --background --quiet >"$out/launch.log" 2>&1 ||
  { cat "$out/launch.log"; exit 1; }
stop() {
  say "powering off (ACPI power button)…"
  if "$launch" powerdown --run-dir "$run" --timeout 90 >/dev/null 2>&1; then
    say "the VM powered off cleanly: $(grep -a 'vhsm-init: shutdown' "$out/console.log" | sed 's/vhsm-init: shutdown: //' | paste -sd';' | sed 's/;/; /g')"
  else
    say "the VM did not power off in time; stopped it"
    "$launch" stop --run-dir "$run" >/dev/null 2>&1
  fi
}
if ! "$launch" wait --run-dir "$run" --pattern 'vhsmd: ready on' --timeout 240 >/dev/null; then
  say "vhsmd did not come up; the last console lines:"
  tail -15 "$out/console.log" | sed 's/^/  /'
  "$launch" stop --run-dir "$run" >/dev/null 2>&1
  exit 1
fi
grep -a -E '^vhsm-init: (attest|derive|volume|mount|network|ready after) |report MEASUREMENT|enrolled as|unlocked as' \
  "$out/console.log" | sed 's/^/  /'

# vhsmd's certificate was made inside the VM. The console's fingerprint is the host's word, so it is only shown: the
# certificate is trusted because 'vhsm server verify' proves, from a fresh report over the TLS connection itself,
# that its key lives in a genuine SEV-SNP VM with the MEASUREMENT of out/manifest.json (the emulator's ARK is the
# root here, named explicitly; on real hardware AMD's pinned roots are used).
printed=$(grep -ao 'fingerprint [0-9A-F:]*' "$out/console.log" | tail -1 | cut -d' ' -f2)
"$VHSM" emulator certs --state "$out/emulator" --out "$out/emulator-certs" >/dev/null ||
  { say "cannot read the emulator's certificates"; stop; exit 1; }
rm -f "$out/vhsmd-cert.pem"
say "verifying vhsmd by attestation (vhsm server verify --manifest out/manifest.json):"
if ! "$VHSM" server verify "$url" --manifest "$out/manifest.json" \
  --trust-emulator-root "$out/emulator-certs/ark.pem" --ca-out "$out/vhsmd-cert.pem" | sed 's/^/  /'; then
  say "vhsmd on $url is not the expected confidential VM: nothing was sent to it; stopping"
  stop
  exit 1
fi
[ -s "$out/vhsmd-cert.pem" ] || { say "vhsm server verify wrote no certificate"; stop; exit 1; }
served=$(openssl x509 -noout -fingerprint -sha256 -in "$out/vhsmd-cert.pem" | cut -d= -f2)
api() { curl -s --max-time 20 --cacert "$out/vhsmd-cert.pem" -H "X-Vault-Token: ${token:-}" "$@"; }
base=$url
# sys/init answers the root token only sealed to the operator key (vhsmd's operator_key, the recovery public key):
# 'vhsm operator init' opens it with the private key, which stays on this machine.
token=$("$VHSM" operator init "$base" --key "$out/recovery-key.pem" --cacert "$out/vhsmd-cert.pem" --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])')
[ -n "$token" ] || { say "vhsm operator init failed"; stop; exit 1; }
api -X POST -d '{"type":"transit"}' "$base/v1/sys/mounts/transit" >/dev/null
api -X POST "$base/v1/transit/keys/demo" >/dev/null
plaintext=$(printf 'hello from the host' | base64)
ciphertext=$(api -X POST -d "{\"plaintext\":\"$plaintext\"}" "$base/v1/transit/encrypt/demo" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["ciphertext"])')
decrypted=$(api -X POST -d "{\"ciphertext\":\"$ciphertext\"}" "$base/v1/transit/decrypt/demo" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["plaintext"])' | base64 -d)
# Workload logins: the sev-snp auth method at auth/sev-snp/ (its role is the one command printed below).
api -X POST -d '{"type":"sev-snp"}' "$base/v1/sys/auth/sev-snp" >/dev/null
# This emulated chip's root is not AMD's: trusted for logins only because it is named here (as on real hardware,
# AMD's roots need no configuration).
api -X POST -d "{\"trusted_roots\": [$(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' "$out/emulator-certs/ark.pem")]}" \
  "$base/v1/auth/sev-snp/config" >/dev/null
cat <<EOF

vhsmd is serving inside the emulated confidential VM.
  address:     $base   (TLS certificate verified by attestation, saved as out/vhsmd-cert.pem;
               SHA-256 $served; the console printed $printed, informative only)
  root token:  $token
  transit:     encrypt "hello from the host" -> $ciphertext
               decrypt -> "$decrypted"
  try:         curl --cacert out/vhsmd-cert.pem -H "X-Vault-Token: $token" $base/v1/sys/mounts
  recovery:    $VHSM volume recover out/disk.img --recovery-key out/recovery-key.pem
  verify:      $VHSM server verify $base --manifest out/manifest.json --trust-emulator-root out/emulator-certs/ark.pem
  new root:    $VHSM operator generate-root $base --key out/recovery-key.pem --cacert out/vhsmd-cert.pem
  login role:  auth/sev-snp is enabled (trusting the emulated chip's root); the role for VMs of this image
               (out/role.json, written by image/manifest --role-json):
               curl --cacert out/vhsmd-cert.pem -H "X-Vault-Token: $token" --data @out/role.json $base/v1/auth/sev-snp/role/vhsm-image
EOF
if [ "$decrypted" != "hello from the host" ]; then
  say "the round trip failed"
  stop
  exit 1
fi
if [ -t 0 ]; then
  say "running; press Ctrl-C to power the VM off"
  trap 'echo; stop; exit 0' INT TERM
  while "$launch" status --run-dir "$run" >/dev/null 2>&1; do sleep 1; done
  say "the VM stopped by itself; console: $out/console.log"
else
  stop
fi
