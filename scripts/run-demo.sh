#!/usr/bin/env bash
# make run, until the sealed boot lands (issue 5): what works today, end to end on this machine.
# An emulated Milan chip (kept in .state/chip), its Secure Processor served on a unix socket, and a guest-side
# attestation round trip through the same code a guest uses: report, certificates, verification, sealing keys.
set -euo pipefail
VHSM=${VHSM:?set VHSM to the vhsm binary}
root=$(cd "$(dirname "$0")/.." && pwd)
state=$root/.state
chip=$state/chip
sock=$state/snp.sock
work=$state/run
mkdir -p "$state" "$work"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*" | sed "s|$root/||g"; "$@"; }

if [ ! -f "$chip/chip.json" ]; then
  step "create an emulated chip (once; kept in .state/chip)"
  show "$VHSM" emulator init --state "$chip" --product milan
fi
show "$VHSM" emulator certs --state "$chip" --out "$work/emulator-certs" >/dev/null

step "launch a guest: the emulated Secure Processor serves it on a unix socket"
measurement=$(printf 'a5%.0s' $(seq 48))
"$VHSM" emulator serve --state "$chip" --socket "$sock" --measurement "$measurement" --policy 0x30000 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done

step "the guest asks for an extended report bound to a fresh nonce"
nonce=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
show "$VHSM" report get --emulator "$sock" --report-data "$nonce" --certs-out "$work/certs" -o "$work/report.bin"
show "$VHSM" report show "$work/report.bin" | sed -n '1,12p'

step "a relying party verifies it: chain, signature, measurement and nonce"
show "$VHSM" report verify "$work/report.bin" --cert-table "$work/certs/certs.bin" \
  --trust-emulator-root "$work/emulator-certs/ark.pem" --measurement "$measurement" --report-data "$nonce"

step "without trusting the emulator's root, the same report is refused (exit 1)"
if show "$VHSM" report verify "$work/report.bin" --cert-table "$work/certs/certs.bin"; then
  echo "unexpected: an emulator report was accepted without --trust-emulator-root" >&2
  exit 1
fi

step "sealing keys: same launch inputs give the same key; a different selection gives another"
tcb=$("$VHSM" report show "$work/report.bin" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["reported_tcb"]["raw"])')
k1=$("$VHSM" key derive --root vcek --fields policy,measurement,tcb --tcb "$tcb" --emulator "$sock")
k2=$("$VHSM" key derive --root vcek --fields policy,measurement,tcb --tcb "$tcb" --emulator "$sock")
k3=$("$VHSM" key derive --root vcek --fields policy,tcb --tcb "$tcb" --emulator "$sock")
echo "vcek + policy + measurement + tcb: ${k1:0:16}… (twice: $([ "$k1" = "$k2" ] && echo same || echo DIFFERENT))"
echo "vcek + policy + tcb:               ${k3:0:16}… ($([ "$k1" != "$k3" ] && echo differs || echo SAME))"
[ "$k1" = "$k2" ] && [ "$k1" != "$k3" ]

step "vhsmd, the key service (dev mode: in-memory behind the barrier, plain HTTP on loopback)"
kill $server 2>/dev/null
wait $server 2>/dev/null || true
VHSMD=${VHSMD:-$(dirname "$VHSM")/vhsmd}
port=8200
if curl -s -o /dev/null "http://127.0.0.1:$port/v1/sys/health"; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
fi
token=root-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
"$VHSMD" --dev --dev-root-token-id "$token" --dev-listen-address "127.0.0.1:$port" >"$work/vhsmd.log" 2>&1 &
vhsmd=$!
trap 'kill $vhsmd 2>/dev/null; wait $vhsmd 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/v1/sys/health" && break; sleep 0.05; done
api() { curl -s -H "X-Vault-Token: $token" "$@"; }
api -X POST -d '{"type":"transit"}' "http://127.0.0.1:$port/v1/sys/mounts/transit"
secret=$(printf 'attested and sealed' | base64)
ciphertext=$(api -X POST -d "{\"plaintext\":\"$secret\"}" "http://127.0.0.1:$port/v1/transit/encrypt/demo" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["ciphertext"])')
echo "transit encrypt: $ciphertext"
plain=$(api -X POST -d "{\"ciphertext\":\"$ciphertext\"}" "http://127.0.0.1:$port/v1/transit/decrypt/demo" |
  python3 -c 'import base64,json,sys; print(base64.b64decode(json.load(sys.stdin)["data"]["plaintext"]).decode())')
echo "transit decrypt: $plain"
[ "$plain" = "attested and sealed" ]

step "done"
echo "vhsmd serves at http://127.0.0.1:$port with root token $token (VAULT_ADDR / VAULT_TOKEN for hvac or curl)."
echo "The sealed boot in QEMU (issue 5) will put vhsmd inside the emulated confidential VM."
if [ -t 0 ]; then
  echo "Press Ctrl-C to stop."
  wait $vhsmd
fi
