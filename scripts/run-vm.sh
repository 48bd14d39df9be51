#!/usr/bin/env bash
# make run: the emulated confidential VM on its embedded defaults. A fresh data disk, the software Secure
# Processor and the VM (out/manifest.json: Debian kernel + out/initrd-emulator.img); waits for vhsmd, checks its TLS
# certificate against the fingerprint the VM printed, calls sys/init through the forwarded port and opens the root
# token sealed to the operator key (vhsm operator init --key out/recovery-key.pem), prints the
# address and root token, does one transit encrypt/decrypt round trip, then keeps the VM running until Ctrl-C and
# powers it off with the ACPI power button (vhsmd stops, the volume closes).
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

# vhsmd's certificate was made inside the VM: trust it when it matches the fingerprint on the VM's console.
printed=$(grep -ao 'fingerprint [0-9A-F:]*' "$out/console.log" | tail -1 | cut -d' ' -f2)
served=$(openssl s_client -connect "127.0.0.1:$port" </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 |
  cut -d= -f2)
if [ -z "$printed" ] || [ "$printed" != "$served" ]; then
  say "the TLS certificate served on $url ($served) is not the one the VM printed ($printed): stopping"
  stop
  exit 1
fi
openssl s_client -connect "127.0.0.1:$port" </dev/null 2>/dev/null | openssl x509 >"$out/vhsmd-cert.pem"
api() { curl -s --max-time 20 --cacert "$out/vhsmd-cert.pem" -H "X-Vault-Token: ${token:-}" "$@"; }
base=$url
# sys/init answers the root token only sealed to the operator key (vhsmd's operator_key, the recovery public key):
# 'vhsm operator init' opens it with the private key, which stays on this machine.
token=$("$VHSM" operator init "$base" --key "$out/recovery-key.pem" --fingerprint "$printed" --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])')
[ -n "$token" ] || { say "vhsm operator init failed"; stop; exit 1; }
api -X POST -d '{"type":"transit"}' "$base/v1/sys/mounts/transit" >/dev/null
api -X POST "$base/v1/transit/keys/demo" >/dev/null
plaintext=$(printf 'hello from the host' | base64)
ciphertext=$(api -X POST -d "{\"plaintext\":\"$plaintext\"}" "$base/v1/transit/encrypt/demo" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["ciphertext"])')
decrypted=$(api -X POST -d "{\"ciphertext\":\"$ciphertext\"}" "$base/v1/transit/decrypt/demo" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["plaintext"])' | base64 -d)
cat <<EOF

vhsmd is serving inside the emulated confidential VM.
  address:     $base   (TLS certificate pinned to the VM's fingerprint $printed; saved as out/vhsmd-cert.pem)
  root token:  $token
  transit:     encrypt "hello from the host" -> $ciphertext
               decrypt -> "$decrypted"
  try:         curl --cacert out/vhsmd-cert.pem -H "X-Vault-Token: $token" $base/v1/sys/mounts
  recovery:    $VHSM volume recover out/disk.img --recovery-key out/recovery-key.pem
  new root:    $VHSM operator generate-root $base --key out/recovery-key.pem --fingerprint $printed
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
