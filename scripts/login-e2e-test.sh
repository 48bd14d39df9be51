#!/usr/bin/env bash
# Workload identity end to end (issue 15), on loopback with two emulated chips:
#  - vhsmd in config mode on chip A (its own measurement), with a KV secret the role's policy allows and one it
#    does not, auth/sev-snp enabled, chip B's emulator root trusted and a role bound to the workload's measurement;
#  - the workload on chip B (another measurement): 'vhsm login' verifies vhsmd by attested TLS, draws a nonce, gets
#    its report from chip B's emulator socket, logs in (HPKE-wrapped by default, --no-wrap too) and writes the token
#    0600; the token reads the allowed secret and is denied the other, and gets an identity token (JWT) whose snp
#    claim names the workload's measurement and chip;
#  - refusals: a role bound to another measurement (exit 1, the server's reasons printed), a server that is not the
#    expected one (exit 1), the emulator's root before it is configured.
# Each check prints 'FAIL name' when it fails; the last line counts.
# Usage: VHSMD=path/to/vhsmd-built-with-trait-Emulator VHSM=path/to/vhsm scripts/login-e2e-test.sh
set -uo pipefail
VHSMD=${VHSMD:?} VHSM=${VHSM:?}
here=$(cd "$(dirname "$0")" && pwd)
. "$(dirname "$0")/lib/test-env.sh"
test_begin
port=$(free_port)
url=https://127.0.0.1:$port
server_measurement=$(printf 'ab%.0s' $(seq 48))
workload_measurement=$(printf '5a%.0s' $(seq 48))
other_measurement=$(printf '6b%.0s' $(seq 48))

emulated_chip "$work/chip-a" && emulated_chip "$work/chip-b" || { echo "login-e2e-test: emulator init failed"; exit 1; }
emulated_serve "$work/chip-a" "$work/a.sock" --measurement "$server_measurement" ||
  { echo "login-e2e-test: chip A's emulator did not start:"; cat "$work/a.sock.log"; exit 1; }
emulated_serve "$work/chip-b" "$work/b.sock" --measurement "$workload_measurement" ||
  { echo "login-e2e-test: chip B's emulator did not start:"; cat "$work/b.sock.log"; exit 1; }
mkdir -p "$work/data"
cat >"$work/config.json" <<JSON
{"listener": {"address": "127.0.0.1:$port"}, "storage": {"path": "$work/data"},
 "seal": "emulator:$work/a.sock", "allow_smt": true, "audit_file": "$work/audit.log"}
JSON
vhsmd_start "$work/config.json" "$work/vhsmd.log" || { echo "login-e2e-test: vhsmd did not start:"; cat "$work/vhsmd.log"; exit 1; }
cacert=$work/data/tls/cert.pem
token=$(root_token "$url" "$cacert") || { echo "login-e2e-test: sys/init failed"; exit 1; }
# api METHOD PATH [JSON]: one request with the root token; prints the HTTP status.
api() {
  curl -s -o "$work/answer.json" -w '%{http_code}' --cacert "$cacert" -H "X-Vault-Token: ${TOKEN:-$token}" \
    -X "$1" ${3:+--data "$3"} "$url/v1/$2"
}
json() { python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))'; }
[ "$(api POST sys/mounts/secret '{"type":"kv","options":{"version":"2"}}')" = 204 ] &&
  [ "$(api POST secret/data/app '{"data":{"password":"for-the-workload"}}')" = 200 ] &&
  [ "$(api POST secret/data/other '{"data":{"password":"not-for-it"}}')" = 200 ] &&
  [ "$(api PUT sys/policies/acl/app '{"policy":"path \"secret/data/app\" { capabilities = [\"read\"] }\npath \"identity/oidc/token/app\" { capabilities = [\"read\"] }"}')" = 204 ] &&
  [ "$(api POST identity/oidc/key/workloads '{"allowed_client_ids": ["*"]}')" = 204 ] &&
  [ "$(api POST identity/oidc/role/app '{"key": "workloads", "ttl": "15m"}')" = 204 ] &&
  [ "$(api POST sys/auth/sev-snp '{"type":"sev-snp"}')" = 204 ] &&
  [ "$(api POST auth/sev-snp/config "{\"trusted_roots\": [$(json <"$work/chip-b/certs/ark.pem")]}")" = 204 ] &&
  [ "$(api POST auth/sev-snp/role/app "{\"bound_measurements\": [\"$workload_measurement\"], \"token_policies\": [\"app\"]}")" = 204 ] &&
  [ "$(api POST auth/sev-snp/role/elsewhere "{\"bound_measurements\": [\"$other_measurement\"], \"token_policies\": [\"app\"]}")" = 204 ] ||
  { echo "login-e2e-test: setting up vhsmd failed:"; cat "$work/answer.json"; exit 1; }

# login ROLE [OPTIONS…]: vhsm login as the workload on chip B, checking vhsmd's measurement on chip A.
login() {
  local role=$1
  shift
  "$VHSM" login "$url" --role "$role" --measurement "$server_measurement" \
    --trust-emulator-root "$work/chip-a/certs/ark.pem" --emulator "$work/b.sock" "$@"
}
mode() { stat -c %a "$1"; }
read_as() { TOKEN=$(cat "$1") api GET "secret/data/$2"; }

started=$(date +%s%N)
login app -o "$work/token" >"$work/login.out" 2>&1
status=$?
elapsed_ms=$((($(date +%s%N) - started) / 1000000))
check "vhsm login (HPKE-wrapped answer) exits 0 and writes the token mode 0600 ($elapsed_ms ms for the whole process)" \
  '[ "$status" = 0 ] && [ -s "$work/token" ] && [ "$(mode "$work/token")" = 600 ]'
[ "$status" = 0 ] || cat "$work/login.out"
check "the workload's token reads the secret its role's policy allows" \
  '[ "$(read_as "$work/token" app)" = 200 ] && grep -q for-the-workload "$work/answer.json"'
check "the workload's token is denied another secret (403)" '[ "$(read_as "$work/token" other)" = 403 ]'
check "the token's metadata names the role and the workload's measurement and chip" \
  '[ "$(TOKEN=$(cat "$work/token") api GET auth/token/lookup-self)" = 200 ] &&
   python3 -c "import json,sys; m=json.load(open(sys.argv[1]))[\"data\"][\"meta\"]; sys.exit(0 if m[\"role\"] == \"app\" and m[\"measurement\"] == sys.argv[2] else 1)" "$work/answer.json" "$workload_measurement"'
check "the workload's token gets an identity token (ES256) whose snp claim names its measurement and chip, sub 64 hex digits" \
  '[ "$(TOKEN=$(cat "$work/token") api GET identity/oidc/token/app)" = 200 ] &&
   python3 - "$work/answer.json" "$workload_measurement" "$work/chip-b/chip.json" <<"PY"
import base64, json, sys
token = json.load(open(sys.argv[1]))["data"]["token"]
header, claims = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in token.split(".")[:2])
chip_id = json.load(open(sys.argv[3]))["chipID"]
ok = (header["alg"] == "ES256" and claims["snp"]["measurement"] == sys.argv[2] and claims["snp"]["role"] == "app"
      and claims["snp"]["chip_id"] == chip_id and len(claims["sub"]) == 64
      and claims["exp"] - claims["iat"] == 900)
open(sys.argv[1] + ".sub", "w").write(claims["sub"])
sys.exit(0 if ok else 1)
PY'
check "the audit log never holds the token" '! grep -qF "$(cat "$work/token")" "$work/audit.log"'
check "--no-wrap logs in too, and --json prints the whole auth block" \
  'login app --no-wrap --json >"$work/auth.json" 2>"$work/nowrap.err" &&
   python3 -c "import json,sys; a=json.load(open(sys.argv[1])); sys.exit(0 if a[\"client_token\"] and \"app\" in a[\"policies\"] and a[\"metadata\"][\"role\"] == \"app\" else 1)" "$work/auth.json"'
# sub_of TOKEN: the sub claim of an identity token for TOKEN.
sub_of() {
  TOKEN=$1 api GET identity/oidc/token/app >/dev/null &&
    python3 -c 'import base64,json,sys; p=json.load(open(sys.argv[1]))["data"]["token"].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["sub"])' "$work/answer.json"
}
check "a second login of the same VM and role has the same identity sub (per mount, role and chip)" \
  '[ "$(sub_of "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"client_token\"])" "$work/auth.json")")" = "$(cat "$work/answer.json.sub")" ]'
check "a role bound to another measurement is refused: exit 1 and the server's reason, with both values" \
  'out=$(login elsewhere 2>&1); [ $? = 1 ] && grep -qi "measurement" <<<"$out" && grep -q "$workload_measurement" <<<"$out"'
check "a server with another measurement than expected is refused (exit 1) with the attested-TLS verdict" \
  'out=$("$VHSM" login "$url" --role app --measurement "$other_measurement" \
     --trust-emulator-root "$work/chip-a/certs/ark.pem" --emulator "$work/b.sock" 2>&1); [ $? = 1 ] && grep -q "NOT TRUSTED\|not trusted" <<<"$out"'
[ "$(api POST auth/sev-snp/config '{"trusted_roots": []}')" = 204 ] || echo "login-e2e-test: could not clear trusted_roots"
check "before chip B's emulator root is configured the login is refused (exit 1, not genuine)" \
  'out=$(login app 2>&1); [ $? = 1 ] && grep -qi "root\|genuine\|chain" <<<"$out"'

test_end login-e2e-test
