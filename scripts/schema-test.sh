#!/usr/bin/env bash
# The HTTP API under schemathesis (issue 16, item 2), driven by vhsmd's own OpenAPI document:
#  - vhsmd --dev --dev-root-token-id on a random loopback port; transit, KV version 1 and 2 (secret/ is the dev
#    mount), an sev-snp auth method, an identity/oidc key and role, a transit key and a KV secret are made first,
#    so that every engine's paths are in the document and some resources exist,
#  - the document is fetched with the root token (GET /v1/sys/internal/specs/openapi) and must be valid OpenAPI 3.0
#    (openapi-spec-validator),
#  - schemathesis runs its examples, coverage and fuzzing phases with the root token on every operation, SCHEMA_EXAMPLES
#    examples per operation (default 20; 'make schema-fuzz' runs more), each request bounded by a 10 s timeout, with
#    the checks: no 5xx (not_a_server_error), every status documented (status_code_conformance), the documented
#    content type (content_type_conformance) and body schema (response_schema_conformance); a request that times
#    out is a failure too,
#  - the cluster paths of issue 17 (sys/cluster/..., sys/step-down) are in the document, and schemathesis sent each of
#    them (a node alone answers them with the documented 400),
#  - afterwards vhsmd's process is alive and sys/health answers 200.
# Not run by schemathesis: GET /sys/attestation (a documented 501 in dev mode: no Secure Processor; its answers are
# tested by AttestationEndpointTests and make attested-test) and POST /auth/token/revoke-self (it would revoke the
# root token and end the run).
# Usage: VHSMD=path/to/vhsmd scripts/schema-test.sh   (SCHEMA_EXAMPLES=N, SCHEMA_SEED=N, KEEP=1 keeps the work directory)
set -uo pipefail
VHSMD=${VHSMD:?}
EXAMPLES=${SCHEMA_EXAMPLES:-20}
SEED=${SCHEMA_SEED:-$RANDOM}
command -v st >/dev/null || { echo "schema-test: schemathesis's st is not on PATH (scripts/deps.sh installs 4.32.5)"; exit 1; }
. "$(dirname "$0")/lib/test-env.sh"
test_begin
port=$(free_port)
url=http://127.0.0.1:$port
root=ROOT

: >"$work/vhsmd.log"
"$VHSMD" --dev --dev-root-token-id "$root" --dev-listen-address "127.0.0.1:$port" >"$work/vhsmd.log" 2>&1 &
VHSMD_PID=$!
pids+=("$VHSMD_PID")
for _ in $(seq 300); do grep -q "ready on" "$work/vhsmd.log" && break; sleep 0.05; done
grep -q "ready on" "$work/vhsmd.log" || { echo "schema-test: vhsmd did not start:"; cat "$work/vhsmd.log"; exit 1; }

# api METHOD PATH [BODY]: the status code (root token).
api() { curl -s -o "$work/last.json" -w '%{http_code}' -X "$1" -H "X-Vault-Token: $root" ${3:+--data "$3"} "$url/v1/$2"; }
check "transit is mounted at transit/ (204)" '[ "$(api POST sys/mounts/transit "{\"type\":\"transit\"}")" = 204 ]'
check "KV version 1 is mounted at kv1/ (204)" '[ "$(api POST sys/mounts/kv1 "{\"type\":\"kv\"}")" = 204 ]'
check "the sev-snp auth method is enabled at auth/sev-snp/ (204)" \
  '[ "$(api POST sys/auth/sev-snp "{\"type\":\"sev-snp\"}")" = 204 ]'
check "an identity/oidc key is written (204)" \
  '[ "$(api POST identity/oidc/key/k1 "{\"allowed_client_ids\":[\"*\"]}")" = 204 ]'
check "an identity/oidc role is written (204)" '[ "$(api POST identity/oidc/role/r1 "{\"key\":\"k1\"}")" = 204 ]'
check "a transit key is created (200 or 204)" '[[ "$(api POST transit/keys/k1 "{}")" =~ ^20[04]$ ]]'
check "a KV v2 secret is written (200)" '[ "$(api POST secret/data/s1 "{\"data\":{\"a\":\"b\"}}")" = 200 ]'
check "a KV v1 secret is written (204)" '[ "$(api POST kv1/s1 "{\"a\":\"b\"}")" = 204 ]'

curl -sf -H "X-Vault-Token: $root" "$url/v1/sys/internal/specs/openapi" >"$work/openapi.json"
check "the OpenAPI document lists the transit, KV v1 and v2, sev-snp, identity and cluster paths" \
  'python3 - "$work/openapi.json" <<"EOF"
import json, sys
paths = json.load(open(sys.argv[1]))["paths"]
want = ["/transit/encrypt/{name}", "/kv1/{path}", "/secret/data/{path}", "/auth/sev-snp/login",
        "/identity/oidc/role/{name}", "/sys/mounts/{path}", "/sys/cluster/members", "/sys/cluster/members/",
        "/sys/cluster/members/{node_id}", "/sys/cluster/rotate-root", "/sys/cluster/join/nonce", "/sys/cluster/join",
        "/sys/cluster/join-policy", "/sys/step-down"]
missing = [p for p in want if p not in paths]
print("schema-test: missing from the document:", missing) if missing else None
sys.exit(bool(missing))
EOF'
check "the document is valid OpenAPI 3.0 (openapi-spec-validator)" \
  'python3 -c "import json,sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1])))" "$work/openapi.json"'

operations=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["paths"]; print(sum(1 for p in d.values() for m in ("get","post","patch","delete") if m in p))' "$work/openapi.json")
echo "schema-test: $operations operations, up to $EXAMPLES examples each, seed $SEED"
start=$(date +%s)
# From the work directory: schemathesis keeps its cache (.schemathesis/) in the current one.
(cd "$work" && st run "$work/openapi.json" --url "$url/v1" -H "X-Vault-Token: $root" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing --max-examples "$EXAMPLES" --seed "$SEED" --request-timeout 10 --workers 1 \
  --exclude-path /sys/attestation --exclude-path /auth/token/revoke-self \
  --continue-on-failure --suppress-health-check all --no-color \
  --report ndjson --report-ndjson-path "$work/run.ndjson") >"$work/st.log" 2>&1
st_status=$?
seconds=$(($(date +%s) - start))
cases=$(grep -oE '[0-9]+ generated' "$work/st.log" | tail -1 | grep -oE '[0-9]+')
echo "schema-test: schemathesis ran ${cases:-?} test cases in ${seconds}s (exit $st_status)"
check "schemathesis finds no failure: no 5xx, no undocumented status, content type or body, no timeout" \
  '[ "$st_status" = 0 ] || { sed -n "/FAILURES\|ERRORS/,\$p" "$work/st.log" | head -200; false; }'
check "schemathesis generated test cases (at least one per operation)" '[ "${cases:-0}" -ge "$operations" ]'
# A node alone (dev) answers every cluster path with a documented 400: schemathesis must have sent each of them.
check "schemathesis exercised the cluster operations (sys/cluster/..., sys/step-down)" \
  'python3 - "$work/run.ndjson" <<"EOF"
import json, sys
want = {"GET /sys/cluster/members", "GET /sys/cluster/members/", "DELETE /sys/cluster/members/{node_id}",
        "POST /sys/cluster/rotate-root", "POST /sys/cluster/join/nonce", "POST /sys/cluster/join",
        "GET /sys/cluster/join-policy", "POST /sys/cluster/join-policy", "DELETE /sys/cluster/join-policy",
        "POST /sys/step-down"}
sent = {}
for line in open(sys.argv[1]):
    finished = json.loads(line).get("ScenarioFinished") or {}
    recorder = finished.get("recorder") or {}
    if recorder.get("label") in want:
        sent[recorder["label"]] = sent.get(recorder["label"], 0) + len(recorder.get("cases") or {})
print("schema-test: cases per cluster operation:", ", ".join(f"{k} {v}" for k, v in sorted(sent.items())))
missing = sorted(label for label in want if not sent.get(label))
print("schema-test: never exercised:", missing) if missing else None
sys.exit(bool(missing))
EOF'
check "vhsmd's process is alive after the run" 'kill -0 "$VHSMD_PID"'
check "sys/health answers 200 after the run" \
  '[ "$(curl -s -m 5 -o /dev/null -w "%{http_code}" "$url/v1/sys/health")" = 200 ]'
check "vhsmd logged no internal error" \
  '! grep -n "internal error" "$work/vhsmd.log" || { grep -n "internal error" "$work/vhsmd.log" | head; false; }'
test_end schema-test
