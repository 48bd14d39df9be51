#!/usr/bin/env bash
# auth/sev-snp through the Python login client (clients/python/vhsm_login.py, the protocol implemented a second
# time), against vhsmd --dev (plain HTTP: S is 32 zero bytes) on loopback, a workload on an emulated chip of its
# own ('vhsm emulator init', reports from 'vhsm emulator report'):
#  - the module's unit tests (the README's binding vectors, RFC 9180's HPKE vectors, the command line),
#  - auth/sev-snp enabled through sys/auth, listed beside token/, its config and role written through the API,
#  - before the emulator's ARK is in trusted_roots, the login is refused (403, the root named),
#  - the workload logs in (its MEASUREMENT, role and chip in the token's metadata), reads the KV secret its role's
#    policy allows and is denied another (403); the token looks itself up with the role's policies,
#  - refused, each with its status and reason: a nonce replayed after a success and after a failure, an expired
#    nonce, a nonce vhsmd never issued, a report bound to another nonce, a role bound to another MEASUREMENT, one
#    flipped byte in the report (MEASUREMENT, REPORT_DATA, signature) and in the VCEK, another chip's report with
#    its own untrusted chain, this chip's report with another chip's VCEK (both roots trusted); roles without an
#    identity or naming a missing policy, malformed base64 and hex are 400,
#  - a public key bound into REPORT_DATA (K) is accepted, and a login that sends another key than the one bound
#    is refused,
#  - image/manifest --role-json: the role for a manifest's MEASUREMENT, and with --id-block for the ID block's
#    signer, family, image and SVN, each taken by vhsmd as written and logging in the launch it describes (another
#    ID key and a lower GUEST_SVN refused); allow_debug follows the manifest's POLICY,
#  - the audit log (--audit-file) records each refusal's reasons and no token or nonce in clear,
#  - over https through a TLS-terminating proxy (scripts/mitm-proxy.py --plain-upstream): S is the proxy's SPKI,
#    refused until config.audience_spki_sha256 names it, then accepted; --ca of another certificate refused.
# Usage: VHSMD=path/to/vhsmd VHSM=path/to/vhsm scripts/login-python-test.sh   (KEEP=1 keeps the work directory)
set -uo pipefail
VHSMD=${VHSMD:?} VHSM=${VHSM:?}
here=$(cd "$(dirname "$0")/.." && pwd)
client="$here/clients/python/vhsm_login.py"
. "$(dirname "$0")/lib/test-env.sh"
test_begin
port=$(free_port)
url=http://127.0.0.1:$port
measurement=$(printf 'ab%.0s' $(seq 48))
other_measurement=$(printf 'cd%.0s' $(seq 48))
root=$(python3 -c 'import secrets; print(secrets.token_hex(16))')

check "the module's unit tests pass (python3 -m unittest clients/python/test_vhsm_login.py)" \
  '(cd "$here/clients/python" && python3 -m unittest -v test_vhsm_login.py) >"$work/unit.log" 2>&1 || { cat "$work/unit.log"; false; }'

# The workload's chip, and another chip (its reports with its own VCEK must not pass for the first's).
"$VHSM" emulator init --state "$work/chip" --product genoa >/dev/null 2>&1 &
"$VHSM" emulator init --state "$work/other-chip" --product genoa >/dev/null 2>&1 &
wait
"$VHSM" emulator certs --state "$work/chip" --out "$work/certs" >/dev/null

"$VHSMD" --dev --dev-root-token-id "$root" --dev-listen-address "127.0.0.1:$port" --audit-file "$work/audit.log" \
  >"$work/vhsmd.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do grep -q "ready on" "$work/vhsmd.log" && break; sleep 0.05; done
grep -q "ready on" "$work/vhsmd.log" || { echo "login-python-test: vhsmd did not start:"; cat "$work/vhsmd.log"; exit 1; }

# api METHOD PATH [BODY]: prints the body, then the status on the last line (root token unless TOKEN is set).
api() {
  curl -s -X "$1" -H "X-Vault-Token: ${TOKEN:-$root}" ${3:+--data "$3"} -w '\n%{http_code}' "$url/v1/$2"
}
status_of() { tail -n1 <<<"$1"; }
body_of() { sed '$d' <<<"$1"; }

out=$(api POST sys/auth/sev-snp '{"type": "sev-snp", "description": "workloads"}')
check "sys/auth/sev-snp enables the method (204)" '[ "$(status_of "$out")" = 204 ]'
out=$(api GET sys/auth)
check "sys/auth lists sev-snp/ (type sev-snp) beside token/" \
  'body_of "$out" | python3 -c "import json,sys; d=json.load(sys.stdin)[\"data\"]; sys.exit(not (d[\"sev-snp/\"][\"type\"] == \"sev-snp\" and d[\"token/\"][\"type\"] == \"token\"))"'
policy='path "secret/data/allowed" { capabilities = ["read"] }'
out=$(api PUT sys/policies/acl/workload-reader "$(python3 -c 'import json,sys; print(json.dumps({"policy": sys.argv[1]}))' "$policy")")
check "the policy that allows reading secret/allowed is written (204)" '[ "$(status_of "$out")" = 204 ]'
api POST secret/data/allowed '{"data": {"value": "for the workload"}}' >/dev/null
api POST secret/data/denied '{"data": {"value": "not for the workload"}}' >/dev/null
out=$(api POST auth/sev-snp/role/workload "{\"bound_measurements\": [\"$measurement\"], \"token_policies\": [\"workload-reader\"], \"token_ttl\": \"10m\"}")
check "the role bound to the workload's MEASUREMENT is written (204)" '[ "$(status_of "$out")" = 204 ]'
out=$(api POST auth/sev-snp/role/other "{\"bound_measurements\": [\"$other_measurement\"], \"token_policies\": [\"workload-reader\"]}")
check "a role bound to another MEASUREMENT is written (204)" '[ "$(status_of "$out")" = 204 ]'
out=$(api POST auth/sev-snp/role/nobody '{"token_policies": ["workload-reader"]}')
check "a role that names no identity is refused (400, named)" \
  '[ "$(status_of "$out")" = 400 ] && grep -q "a sev-snp role must name an identity" <<<"$out"'
out=$(api POST auth/sev-snp/role/missing "{\"bound_measurements\": [\"$measurement\"], \"token_policies\": [\"no-such-policy\"]}")
check "a role that names a missing policy is refused (400, named)" \
  '[ "$(status_of "$out")" = 400 ] && grep -q "no-such-policy" <<<"$out"'

login() { python3 "$client" "$url" --emulator-state "$work/chip" --vhsm "$VHSM" "$@"; }
out=$(login --role workload --measurement "$measurement" 2>&1)
status=$?
check "before the emulator's ARK is configured, the login is refused (exit 1, 403, the root named)" \
  '[ "$status" = 1 ] && grep -q "HTTP 403" <<<"$out" && grep -q "not genuine: the root CN=ARK-Genoa .* is neither a pinned AMD ARK nor one of this method.s trusted_roots" <<<"$out" || { echo "$out"; false; }'

config=$(python3 -c 'import json,sys; print(json.dumps({"trusted_roots": [open(sys.argv[1]).read()], "nonce_ttl": "30s"}))' "$work/certs/ark.pem")
out=$(api POST auth/sev-snp/config "$config")
check "the config names the emulator's ARK in trusted_roots (204)" '[ "$(status_of "$out")" = 204 ]'
out=$(api GET auth/sev-snp/config)
check "... and reads back with nonce_ttl 30" \
  'body_of "$out" | python3 -c "import json,sys; d=json.load(sys.stdin)[\"data\"]; sys.exit(not (len(d[\"trusted_roots\"]) == 1 and d[\"nonce_ttl\"] == 30))"'

login --role workload --measurement "$measurement" --json >"$work/auth.json" 2>"$work/login.err"
status=$?
check "the workload logs in with the Python client (exit $status)" '[ "$status" = 0 ] || { cat "$work/login.err"; false; }'
field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d=d[k]
print(" ".join(d) if isinstance(d, list) else d)' "$@"; }
check "the auth block names the role, the MEASUREMENT and the chip, and carries the role's policies and TTL" \
  '[ "$(field "$work/auth.json" metadata.role)" = workload ] && [ "$(field "$work/auth.json" metadata.measurement)" = "$measurement" ] && [ "$(field "$work/auth.json" metadata.chip_id)" = "$(field "$work/chip/chip.json" chipID)" ] && [ "$(field "$work/auth.json" policies)" = "default workload-reader" ] && [ "$(field "$work/auth.json" lease_duration)" = 600 ]'
token=$(field "$work/auth.json" client_token)
out=$(TOKEN=$token api GET auth/token/lookup-self)
check "the token looks itself up: the role's policies, path auth/sev-snp/login" \
  '[ "$(status_of "$out")" = 200 ] && body_of "$out" | python3 -c "import json,sys; d=json.load(sys.stdin)[\"data\"]; sys.exit(not (d[\"policies\"] == [\"default\", \"workload-reader\"] and d[\"path\"] == \"auth/sev-snp/login\" and d[\"meta\"][\"role\"] == \"workload\"))"'
out=$(TOKEN=$token api GET secret/data/allowed)
check "the token reads the KV secret its role's policy allows (200)" \
  '[ "$(status_of "$out")" = 200 ] && grep -q "for the workload" <<<"$out"'
out=$(TOKEN=$token api GET secret/data/denied)
check "... and is denied another (403 permission denied)" \
  '[ "$(status_of "$out")" = 403 ] && grep -q "permission denied" <<<"$out"'
login --role workload --measurement "$measurement" -o "$work/token" >/dev/null 2>&1
check "-o writes the token alone to a file of mode 0600" \
  '[ "$(stat -c %a "$work/token")" = 600 ] && [ "$(wc -l <"$work/token")" = 1 ] && grep -q "^s\." "$work/token"'
for suite in x25519 p384; do
  login --role workload --measurement "$measurement" --wrap "$suite" --json >"$work/wrapped-$suite.json" 2>"$work/wrapped.err"
  status=$?
  check "a login with --wrap $suite: vhsmd seals the auth block (HPKE) and the Python client opens it (exit $status)" \
    '[ "$status" = 0 ] && [ "$(field "$work/wrapped-$suite.json" metadata.role)" = workload ] &&
     [ "$(status_of "$(TOKEN=$(field "$work/wrapped-$suite.json" client_token) api GET secret/data/allowed)")" = 200 ] ||
     { cat "$work/wrapped.err"; false; }'
done

# The refusals, driven through the module so that each can bend one thing: attempt.py MODE [ARGS] prints
# "STATUS<TAB>reason; reason" (200 for a login that succeeded).
cat >"$work/attempt.py" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
import vhsm_login
from cryptography.hazmat.primitives.asymmetric import ec
url, vhsm, state, measurement, role, mode = sys.argv[2:8]
extra = sys.argv[8:]
launch = ["--measurement", measurement]
def evidence(data, state=state):
    return vhsm_login.emulator_evidence(vhsm, state, data, launch)
def flip(blob, offset):
    blob = bytearray(blob); blob[offset] ^= 0x01; return bytes(blob)
nonce, public_key = None, None
if mode == "replay":                       # extra: a nonce already presented
    nonce = bytes.fromhex(extra[0])
elif mode == "invented":                   # a nonce vhsmd never issued
    nonce = bytes.fromhex("42" * 32)
elif mode == "other-nonce":                # the report binds another nonce than the one sent
    real = evidence
    evidence = lambda data: real(vhsm_login.report_data(bytes(32)))
elif mode == "flip-report":                # extra: the byte to flip
    real = evidence
    evidence = lambda data: (lambda r, c: (flip(r, int(extra[0])), c))(*real(data))
elif mode == "flip-vcek":                  # extra: the byte of the VCEK's DER to flip
    real = evidence
    evidence = lambda data: (lambda r, c: (r, [flip(c[0], int(extra[0]))] + c[1:]))(*real(data))
elif mode == "other-chip-vcek":            # the report of another chip, sent with that chip's own VCEK
    evidence = lambda data: vhsm_login.emulator_evidence(vhsm, extra[0], data, launch)
elif mode == "mixed-vcek":                 # this chip's report, sent with the other chip's VCEK and chain
    real = evidence
    evidence = lambda data: (real(data)[0], vhsm_login.emulator_evidence(vhsm, extra[0], data, launch)[1])
elif mode == "id-block":                   # extra: the ID block directory the launch presents
    launch += ["--id-block", extra[0]]
elif mode == "public-key":                 # K: a P-384 key, bound and sent
    public_key = ec.generate_private_key(ec.SECP384R1()).public_key()
elif mode == "swapped-key":                # K binds one key, another is sent
    bound = ec.generate_private_key(ec.SECP384R1()).public_key()
    public_key = ec.generate_private_key(ec.SECP384R1()).public_key()
    real = evidence
    evidence = lambda data: real(vhsm_login.report_data(
        used[0], vhsm_login.spki_sha256(vhsm_login.public_key_spki(bound))))
elif mode != "plain":
    sys.exit(f"unknown mode {mode}")
used = [nonce]
if mode == "swapped-key":
    server = vhsm_login.Server(url)
    used[0] = nonce = vhsm_login.draw_nonce(server, "sev-snp")
try:
    auth = vhsm_login.login(url, role, evidence, public_key=public_key, nonce=nonce)
    print(f"200\t{json.dumps(auth['metadata'])}")
except vhsm_login.Refused as refusal:
    print(f"{refusal.status}\t" + "; ".join(refusal.reasons))
PY
attempt() { python3 "$work/attempt.py" "$here/clients/python" "$url" "$VHSM" "$work/chip" "$measurement" "$@"; }
spent_reason="the login nonce is not one vhsmd issued, or it was already spent"
nonce_of_next() { curl -s -X POST "$url/v1/auth/sev-snp/nonce" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["nonce"])'; }

out=$(curl -s -X POST -w '\n%{http_code}' "$url/v1/auth/sev-snp/nonce")
check "a nonce is drawn without a token: 64 hex digits, its expiry and ttl 30" \
  '[ "$(status_of "$out")" = 200 ] && body_of "$out" | python3 -c "import json,sys; d=json.load(sys.stdin)[\"data\"]; sys.exit(not (len(bytes.fromhex(d[\"nonce\"])) == 32 and d[\"ttl\"] == 30 and d[\"expires_at\"]))"'
spent=$(nonce_of_next)
out=$(attempt workload replay "$spent")
check "a login with a drawn nonce succeeds (the nonce to replay)" '[ "$(cut -f1 <<<"$out")" = 200 ] || { echo "$out"; false; }'
out=$(attempt workload replay "$spent")
check "the nonce replayed after a success is refused (403, not issued or already spent)" \
  '[ "$(cut -f1 <<<"$out")" = 403 ] && grep -q "$spent_reason" <<<"$out" || { echo "$out"; false; }'
failed_nonce=$(nonce_of_next)
out=$(attempt other replay "$failed_nonce")
check "a login refused for its role (the nonce to replay): 403, MEASUREMENT expected and got" \
  '[ "$(cut -f1 <<<"$out")" = 403 ] && grep -q "MEASUREMENT: expected $other_measurement, got $measurement" <<<"$out" || { echo "$out"; false; }'
out=$(attempt workload replay "$failed_nonce")
check "the nonce replayed after a failure is refused (403), though the role now fits" \
  '[ "$(cut -f1 <<<"$out")" = 403 ] && grep -q "$spent_reason" <<<"$out" || { echo "$out"; false; }'
out=$(attempt workload invented)
check "a nonce vhsmd never issued is refused (403)" \
  '[ "$(cut -f1 <<<"$out")" = 403 ] && grep -q "$spent_reason" <<<"$out" || { echo "$out"; false; }'
api POST auth/sev-snp/config '{"nonce_ttl": "1s"}' >/dev/null
expiring=$(nonce_of_next)
sleep 2
out=$(attempt workload replay "$expiring")
check "an expired nonce is refused (403, named expired)" \
  '[ "$(cut -f1 <<<"$out")" = 403 ] && grep -qi "expired" <<<"$out" || { echo "$out"; false; }'
api POST auth/sev-snp/config '{"nonce_ttl": "30s"}' >/dev/null
out=$(attempt workload other-nonce)
check "a report bound to another nonce is refused (403, REPORT_DATA does not bind this login)" \
  '[ "$(cut -f1 <<<"$out")" = 403 ] && grep -q "REPORT_DATA does not bind this login" <<<"$out" || { echo "$out"; false; }'
out=$(attempt other plain)
check "a role bound to another MEASUREMENT refuses the workload (403, expected and got)" \
  '[ "$(cut -f1 <<<"$out")" = 403 ] && grep -q "MEASUREMENT: expected $other_measurement, got $measurement" <<<"$out" || { echo "$out"; false; }'
for offset in 0x90 0x50 0x2a0; do # MEASUREMENT, REPORT_DATA, the signature
  out=$(attempt workload flip-report $((offset)))
  check "one flipped report byte at $offset is refused (403, the signature does not verify)" \
    '[ "$(cut -f1 <<<"$out")" = 403 ] && grep -q "not genuine: the report signature does not verify" <<<"$out" || { echo "$out"; false; }'
done
out=$(attempt workload flip-vcek 200)
check "one flipped byte in the VCEK is refused (403 not genuine, or 400 when it no longer parses)" \
  '{ [ "$(cut -f1 <<<"$out")" = 403 ] && grep -q "not genuine" <<<"$out"; } || { [ "$(cut -f1 <<<"$out")" = 400 ] && grep -q "certificates" <<<"$out"; } || { echo "$out"; false; }'
out=$(attempt workload other-chip-vcek "$work/other-chip")
check "another chip's report with its own VCEK is refused: its root is not trusted (403)" \
  '[ "$(cut -f1 <<<"$out")" = 403 ] && grep -q "not genuine: the root CN=ARK-Genoa .* is neither a pinned AMD ARK nor one of this method.s trusted_roots" <<<"$out" || { echo "$out"; false; }'
"$VHSM" emulator certs --state "$work/other-chip" --out "$work/other-certs" >/dev/null
both=$(python3 -c 'import json,sys; print(json.dumps({"trusted_roots": [open(p).read() for p in sys.argv[1:]]}))' "$work/certs/ark.pem" "$work/other-certs/ark.pem")
api POST auth/sev-snp/config "$both" >/dev/null
out=$(attempt workload other-chip-vcek "$work/other-chip")
check "... and logs in once that chip's root is trusted too (200, its own CHIP_ID)" \
  '[ "$(cut -f1 <<<"$out")" = 200 ] && grep -q "$(field "$work/other-chip/chip.json" chipID)" <<<"$out" || { echo "$out"; false; }'
out=$(attempt workload mixed-vcek "$work/other-chip")
check "a report sent with another chip's VCEK (both roots trusted) is refused (403, the signature)" \
  '[ "$(cut -f1 <<<"$out")" = 403 ] && grep -q "not genuine: .*signature does not verify" <<<"$out" || { echo "$out"; false; }'
out=$(attempt workload public-key)
check "a public key bound into REPORT_DATA (K) and sent: logged in" '[ "$(cut -f1 <<<"$out")" = 200 ] || { echo "$out"; false; }'
out=$(attempt workload swapped-key)
check "a report binding one key, sent with another, is refused (403, SHA-256 of public_key)" \
  '[ "$(cut -f1 <<<"$out")" = 403 ] && grep -q "REPORT_DATA does not bind this login.*SHA-256 of public_key" <<<"$out" || { echo "$out"; false; }'
# Over https: a TLS-terminating proxy (scripts/mitm-proxy.py --plain-upstream, its own certificate) in front of
# vhsmd --dev. The client binds S = SHA-256 of the proxy's SPKI, the key it saw; vhsmd refuses that until the
# proxy's SPKI is named in audience_spki_sha256 (a login relayed through an unknown TLS endpoint never succeeds).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=tls-proxy \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/proxy.key" -out "$work/proxy.crt" 2>/dev/null
python3 "$here/scripts/mitm-proxy.py" "127.0.0.1:$port" --plain-upstream --cert "$work/proxy.crt" \
  --key "$work/proxy.key" >"$work/proxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -qs "listening on" "$work/proxy.log" && break; sleep 0.05; done
proxy_url=https://127.0.0.1:$(grep -o 'listening on 127.0.0.1:[0-9]*' "$work/proxy.log" | cut -d: -f2)
proxy_spki=$(grep -o 'TLS SPKI SHA-256 [0-9a-f]*' "$work/proxy.log" | cut -d' ' -f4)
via_proxy() { python3 "$client" "$proxy_url" --emulator-state "$work/chip" --vhsm "$VHSM" --role workload \
  --measurement "$measurement" "$@"; }
out=$(via_proxy --ca "$work/proxy.crt" 2>&1)
status=$?
check "over https through a TLS proxy vhsmd does not name, the login is refused (exit 1, 403, REPORT_DATA)" \
  '[ "$status" = 1 ] && grep -q "HTTP 403" <<<"$out" && grep -q "REPORT_DATA does not bind this login" <<<"$out" || { echo "$out"; false; }'
out=$(api POST auth/sev-snp/config "{\"audience_spki_sha256\": [\"$proxy_spki\"]}")
check "the proxy's SPKI SHA-256 is named in audience_spki_sha256 (204)" '[ "$(status_of "$out")" = 204 ]'
via_proxy --ca "$work/proxy.crt" --json >"$work/proxy-auth.json" 2>"$work/proxy.err"
status=$?
check "... then the https login through it succeeds, S = the SPKI the client saw (exit $status)" \
  '[ "$status" = 0 ] && [ "$(field "$work/proxy-auth.json" metadata.role)" = workload ] || { cat "$work/proxy.err"; false; }'
via_proxy --ca "$work/proxy.crt" --wrap x25519 --json >"$work/proxy-wrapped.json" 2>"$work/proxy.err"
status=$?
check "... and with --wrap x25519 through that proxy, the sealed auth block opens in the client (exit $status)" \
  '[ "$status" = 0 ] && [ "$(field "$work/proxy-wrapped.json" metadata.role)" = workload ] || { cat "$work/proxy.err"; false; }'
out=$(via_proxy --ca "$work/certs/ark.pem" 2>&1)
status=$?
check "--ca with another certificate: the TLS handshake is refused before any report is made (exit 1)" \
  '[ "$status" = 1 ] && grep -q "CERTIFICATE_VERIFY_FAILED" <<<"$out" || { echo "$out"; false; }'
out=$(via_proxy --insecure 2>&1)
status=$?
check "--insecure (no certificate check) still binds the key seen: logged in through the named proxy (exit 0)" \
  '[ "$status" = 0 ] || { echo "$out"; false; }'
api POST auth/sev-snp/config '{"audience_spki_sha256": []}' >/dev/null
out=$(via_proxy --ca "$work/proxy.crt" 2>&1)
status=$?
check "... and refused again once the audience is removed (exit 1, 403)" \
  '[ "$status" = 1 ] && grep -q "REPORT_DATA does not bind this login" <<<"$out" || { echo "$out"; false; }'

out=$(curl -s -X POST -w '\n%{http_code}' --data "{\"role\": \"workload\", \"nonce\": \"$(nonce_of_next)\", \"report\": \"not base64!\", \"certificates\": [\"AA==\"]}" "$url/v1/auth/sev-snp/login")
check "malformed base64 is refused (400, the field named)" \
  '[ "$(status_of "$out")" = 400 ] && grep -q "'"'"'report'"'"' is not standard base64" <<<"$out" || { echo "$out"; false; }'
out=$(curl -s -X POST -w '\n%{http_code}' --data '{"role": "workload", "nonce": "xyz", "report": "", "certificates": []}' "$url/v1/auth/sev-snp/login")
check "a malformed nonce is refused (400, the field named)" \
  '[ "$(status_of "$out")" = 400 ] && grep -q "'"'"'nonce'"'"'" <<<"$out" || { echo "$out"; false; }'

# Reference values from the image pipeline: image/manifest --role-json on a launch manifest (as 'make image' writes
# it), measurement-bound, and with --id-block signer-bound; vhsmd takes each role as written and logs the launch in.
manifest_tool="$here/image/manifest"
echo "{\"format\": \"vhsm-launch-manifest/1\", \"measurement\": \"$measurement\", \"policy\": \"0x30000\"}" >"$work/manifest.json"
"$manifest_tool" --from "$work/manifest.json" --role-json "$work/role.json" --token-policy workload-reader >"$work/manifest.out"
check "image/manifest --role-json: bound_measurements, allow_debug false, token_policies" \
  'python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(r != {\"bound_measurements\": [sys.argv[2]], \"allow_debug\": False, \"token_policies\": [\"workload-reader\"]})" "$work/role.json" "$measurement" || cat "$work/role.json"'
out=$(curl -s -X POST -H "X-Vault-Token: $root" --data @"$work/role.json" -w '\n%{http_code}' "$url/v1/auth/sev-snp/role/vhsm-image")
check "vhsmd takes the manifest's role as written (curl --data @role.json: 204)" '[ "$(status_of "$out")" = 204 ] || { echo "$out"; false; }'
out=$(attempt vhsm-image plain)
check "... and logs in a launch with the manifest's MEASUREMENT (200)" '[ "$(cut -f1 <<<"$out")" = 200 ] || { echo "$out"; false; }'
echo "{\"format\": \"vhsm-launch-manifest/1\", \"measurement\": \"$measurement\", \"policy\": \"0xb0000\"}" >"$work/debug-manifest.json"
"$manifest_tool" --from "$work/debug-manifest.json" --role-json "$work/debug-role.json" >/dev/null
check "a manifest whose POLICY allows DEBUG (bit 19) gives allow_debug true" \
  'python3 -c "import json,sys; sys.exit(json.load(open(sys.argv[1]))[\"allow_debug\"] is not True)" "$work/debug-role.json"'
for key in id author other-id; do openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$work/$key.pem" 2>/dev/null; done
"$VHSM" idblock create --measurement "$measurement" --family-id 01 --image-id 02 --svn 3 --policy 0x30000 \
  --id-key "$work/id.pem" --author-key "$work/author.pem" --out "$work/idblock" >"$work/idblock.out"
"$VHSM" idblock create --measurement "$measurement" --family-id 01 --image-id 02 --svn 3 --policy 0x30000 \
  --id-key "$work/other-id.pem" --out "$work/other-idblock" >/dev/null
"$VHSM" idblock create --measurement "$measurement" --family-id 01 --image-id 02 --svn 2 --policy 0x30000 \
  --id-key "$work/id.pem" --author-key "$work/author.pem" --out "$work/old-idblock" >/dev/null
id_key_digest=$(sed -n 's/^id_key_digest: //p' "$work/idblock.out")
author_key_digest=$(sed -n 's/^author_key_digest: //p' "$work/idblock.out")
"$manifest_tool" --from "$work/manifest.json" --role-json "$work/signed-role.json" --id-block "$work/idblock" >/dev/null
check "image/manifest --id-block: the ID and author key digests 'vhsm idblock create' printed, family, image, SVN 3, no MEASUREMENT" \
  'python3 -c "
import json, sys
r = json.load(open(sys.argv[1]))
sys.exit(r != {\"bound_id_key_digests\": [sys.argv[2]], \"bound_author_key_digests\": [sys.argv[3]],
               \"bound_family_ids\": [\"01\" + \"00\" * 15], \"bound_image_ids\": [\"02\" + \"00\" * 15],
               \"min_guest_svn\": 3, \"allow_debug\": False})" "$work/signed-role.json" "$id_key_digest" "$author_key_digest" || cat "$work/signed-role.json"'
out=$(curl -s -X POST -H "X-Vault-Token: $root" --data @"$work/signed-role.json" -w '\n%{http_code}' "$url/v1/auth/sev-snp/role/signed-image")
check "vhsmd takes the signer-bound role as written (204)" '[ "$(status_of "$out")" = 204 ] || { echo "$out"; false; }'
signed() { python3 "$work/attempt.py" "$here/clients/python" "$url" "$VHSM" "$work/chip" "$measurement" signed-image id-block "$1"; }
out=$(signed "$work/idblock")
check "... and logs in a launch with that ID block (200, id_key_digest in the metadata)" \
  '[ "$(cut -f1 <<<"$out")" = 200 ] && grep -q "\"id_key_digest\": \"$id_key_digest\"" <<<"$out" || { echo "$out"; false; }'
out=$(signed "$work/other-idblock")
check "a launch signed by another ID key is refused (403, ID_KEY_DIGEST expected and got)" \
  '[ "$(cut -f1 <<<"$out")" = 403 ] && grep -q "ID_KEY_DIGEST: expected $id_key_digest" <<<"$out" || { echo "$out"; false; }'
out=$(signed "$work/old-idblock")
check "a launch of GUEST_SVN 2, below the role's 3, is refused (403, GUEST_SVN named)" \
  '[ "$(cut -f1 <<<"$out")" = 403 ] && grep -q "GUEST_SVN" <<<"$out" || { echo "$out"; false; }'
check "image/manifest refuses an ID block that signs another MEASUREMENT than the manifest's" \
  'echo "{\"format\": \"vhsm-launch-manifest/1\", \"measurement\": \"$other_measurement\", \"policy\": \"0x30000\"}" >"$work/other-manifest.json"; out=$("$manifest_tool" --from "$work/other-manifest.json" --role-json "$work/x.json" --id-block "$work/idblock" 2>&1); [ $? = 1 ] && grep -q "signs MEASUREMENT $measurement, not the manifest.s $other_measurement" <<<"$out" && [ ! -e "$work/x.json" ]'
check "image/manifest --from without --role-json is refused with a sentence" \
  'out=$("$manifest_tool" --from "$work/manifest.json" 2>&1); [ $? = 1 ] && grep -q "give --role-json FILE" <<<"$out"'

out=$(api DELETE sys/auth/sev-snp)
check "sys/auth/sev-snp disables the method (204)" '[ "$(status_of "$out")" = 204 ]'
out=$(curl -s -X POST -w '\n%{http_code}' "$url/v1/auth/sev-snp/nonce")
check "... after which its nonce path is gone (404 or 403)" '[[ "$(status_of "$out")" =~ ^(403|404|405)$ ]]'
# The audit log (vhsmd --audit-file): each refused login with its reasons; no issued token, nonce or root token in
# clear (Vault's HMAC-SHA256 stands for them).
check "the audit log records refused logins with their reasons (MEASUREMENT, spent nonce, signature)" \
  '[ "$(grep "MEASUREMENT: expected $other_measurement" "$work/audit.log" | grep -c "auth/sev-snp/login")" -gt 0 ] && grep -q "$spent_reason" "$work/audit.log" && grep -q "not genuine: the report signature does not verify" "$work/audit.log"'
check "the audit log holds no issued token, no nonce and not the root token in clear" \
  '! grep -qF -e "$token" -e "$(cat "$work/token")" -e "$spent" -e "$failed_nonce" -e "$root" "$work/audit.log" && grep -q "\"client_token\":\"hmac-sha256:" "$work/audit.log"'
test_end login-python-test
