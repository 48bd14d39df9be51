#!/usr/bin/env bash
# Attested TLS end to end (issue 14): vhsmd in config mode on the emulated SEV-SNP Secure Processor, on loopback,
# checked by 'vhsm server verify':
#  - a trusted verdict (exit 0) against a launch manifest; --ca-out then works with curl --cacert; --json for scripts,
#    its spki_sha256 equal to the served certificate's (computed by openssl);
#  - refusals (exit 1) that name what was expected and found: another measurement, --min-tcb above the chip, the
#    emulator's root when not named; vhsmd itself does not start on a DEBUG launch, so no verdict can be had for one;
#  - --from-certificate verifies the evidence in vhsmd's certificate and says freshness was not checked; the
#    operator's own certificate is bound too (sys/attestation covers its key), but carries no evidence;
#  - an unreachable server: exit 3 with a sentence; no reference values: exit 2 saying why.
# Each check prints 'FAIL name' when it fails; the last line counts. Extend it with more `check NAME 'COMMAND'` lines.
# Usage: VHSMD=path/to/vhsmd-built-with-trait-Emulator VHSM=path/to/vhsm scripts/attested-tls-test.sh
set -uo pipefail
VHSMD=${VHSMD:?} VHSM=${VHSM:?}
. "$(dirname "$0")/lib/test-env.sh"
test_begin
port=$(free_port)
url=https://127.0.0.1:$port
measurement=$(printf 'ab%.0s' $(seq 48))
other_measurement=$(printf 'cd%.0s' $(seq 48))

# One emulated chip, its root (for --trust-emulator-root), a launch with a known MEASUREMENT.
emulated_chip "$work/chip" || { echo "attested-tls-test: emulator init failed"; exit 1; }
root=$work/chip/certs/ark.pem
emulator=
serve() { # serve [emulator launch options]: (re)starts the emulator on $work/snp.sock
  stop_pid "$emulator"
  emulated_serve "$work/chip" "$work/snp.sock" "$@"
  local rc=$?
  emulator=$EMULATOR_PID
  return $rc
}
openssl genpkey -algorithm X25519 -out "$work/operator.pem" 2>/dev/null
operator_key=$(openssl pkey -in "$work/operator.pem" -pubout | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')
server=
start() { # start DATA-DIR [extra listener JSON]: vhsmd in config mode on the emulator's seal
  stop_pid "$server"
  mkdir -p "$1"
  cat >"$work/config.json" <<JSON
{"listener": {"address": "127.0.0.1:$port" ${2:-}}, "storage": {"path": "$1"},
 "seal": "emulator:$work/snp.sock", "allow_smt": true, "operator_key": $operator_key}
JSON
  vhsmd_start "$work/config.json" "$work/vhsmd.log"
  local rc=$?
  server=$VHSMD_PID
  return $rc
}
verify() { "$VHSM" server verify "$url" "$@"; }
# The launch manifest 'make image' writes, reduced to what server verify reads.
cat >"$work/manifest.json" <<JSON
{"format": "vhsm-launch-manifest/1", "policy": "0x30000", "measurement": "$measurement"}
JSON

serve --measurement "$measurement"
start "$work/data" || { echo "attested-tls-test: vhsmd did not start:"; cat "$work/vhsmd.log"; exit 1; }
cacert=$work/data/tls/cert.pem

check "missing reference values: exit 2, and the message says why" \
  'out=$(verify --trust-emulator-root "$root" 2>&1); [ $? = 2 ] && grep -q "not verification" <<<"$out"'
started=$(date +%s%N)
verify --manifest "$work/manifest.json" --trust-emulator-root "$root" --ca-out "$work/vhsmd.pem" >"$work/trusted.out" 2>&1
status=$?
elapsed_ms=$((($(date +%s%N) - started) / 1000000))
check "the launch in the manifest is TRUSTED (exit $status, $elapsed_ms ms for the whole process)" \
  '[ "$status" = 0 ] && grep -q "TRUSTED — genuine, bound" "$work/trusted.out" && grep -q "freshness     a fresh report" "$work/trusted.out"'
[ "$status" = 0 ] || cat "$work/trusted.out"
check "--ca-out wrote the served certificate, and curl --cacert trusts vhsmd with it" \
  'cmp -s <(openssl x509 -in "$work/vhsmd.pem" -outform DER) <(openssl x509 -in "$cacert" -outform DER) &&
   [ "$(curl -s -o /dev/null -w "%{http_code}" --cacert "$work/vhsmd.pem" "$url/v1/sys/health")" = 501 ]'
spki=$(openssl x509 -in "$cacert" -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum | cut -d" " -f1)
verify --measurement "$measurement" --trust-emulator-root "$root" --json >"$work/verdict.json" 2>"$work/verdict.err"
status=$?
# field KEY [KEY…]: a value of the last --json verdict (booleans as true/false).
field() { python3 -c 'import functools,json,sys; v=functools.reduce(lambda o, k: o[k], sys.argv[2:], json.load(open(sys.argv[1]))); print(str(v).lower() if isinstance(v, bool) else v)' "$work/verdict.json" "$@" 2>/dev/null; }
check "--json: trusted, fresh, bound, and spki_sha256 is the SHA-256 of the certificate's SPKI (openssl: $spki)" \
  '[ "$status" = 0 ] && [ "$(field trusted)" = true ] && [ "$(field fresh)" = true ] && [ "$(field bound)" = true ] &&
   [ "$(field spki_sha256)" = "$spki" ] && [ "$(field measurement)" = "$measurement" ] && [ "$(field report measurement)" = "$measurement" ]'
check "--json: certificate_sha256 is the served certificate's fingerprint" \
  '[ "$(field certificate_sha256)" = "$(openssl x509 -in "$cacert" -outform DER | sha256sum | cut -d" " -f1)" ]'

rm -f "$work/refused.pem"
check "another expected measurement is refused (exit 1) with the expected and the actual value, and --ca-out is not written" \
  'out=$(verify --measurement "$other_measurement" --trust-emulator-root "$root" --ca-out "$work/refused.pem" 2>&1); [ $? = 1 ] &&
   grep -q "NOT TRUSTED" <<<"$out" && grep -q "MEASUREMENT: expected $other_measurement, got $measurement" <<<"$out" && [ ! -e "$work/refused.pem" ]'
check "any of several --measurement values is accepted" \
  'verify --measurement "$other_measurement" --measurement "$measurement" --trust-emulator-root "$root" >/dev/null 2>&1'
check "--min-tcb above the chip is refused (exit 1) naming REPORTED_TCB" \
  'out=$(verify --measurement "$measurement" --trust-emulator-root "$root" --min-tcb ff00000000000000 2>&1); [ $? = 1 ] && grep -q "REPORTED_TCB: expected" <<<"$out"'
check "the emulator's root is not trusted unless named (exit 1, not genuine)" \
  'out=$(verify --measurement "$measurement" 2>&1); [ $? = 1 ] && grep -q "genuine NO" <<<"$out" && grep -q "  - not genuine" <<<"$out"'
check "--host-data other than the launch's is refused (exit 1)" \
  'out=$(verify --measurement "$measurement" --trust-emulator-root "$root" --host-data "$(printf "11%.0s" $(seq 32))" 2>&1); [ $? = 1 ] && grep -q "HOST_DATA" <<<"$out"'
check "--from-certificate verifies the certificate's own evidence and says freshness was not checked" \
  'out=$(verify --manifest "$work/manifest.json" --trust-emulator-root "$root" --from-certificate 2>&1); [ $? = 0 ] &&
   grep -q "TRUSTED" <<<"$out" && grep -q "freshness     not checked" <<<"$out"'
check "--from-certificate --json: fresh is false" \
  'verify --measurement "$measurement" --trust-emulator-root "$root" --from-certificate --json >"$work/verdict.json" 2>&1 &&
   [ "$(field fresh)" = false ] && [ "$(field trusted)" = true ]'

# The operator's own certificate: sys/attestation binds its key; it carries no evidence of its own.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=vhsm-test \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/op.key" -out "$work/op.crt" 2>/dev/null
start "$work/data" ", \"tls_cert_file\": \"$work/op.crt\", \"tls_key_file\": \"$work/op.key\"" ||
  { echo "attested-tls-test: vhsmd did not start with the operator's certificate:"; cat "$work/vhsmd.log"; }
check "with the operator's certificate, a fresh report binds its key: TRUSTED" \
  'verify --measurement "$measurement" --trust-emulator-root "$root" --ca-out "$work/op-verified.pem" >/dev/null 2>&1 &&
   cmp -s <(openssl x509 -in "$work/op-verified.pem" -outform DER) <(openssl x509 -in "$work/op.crt" -outform DER)'
check "with the operator's certificate, --from-certificate is refused: it carries no evidence" \
  'out=$(verify --measurement "$measurement" --trust-emulator-root "$root" --from-certificate 2>&1); [ $? = 1 ] && grep -q "carries no attestation evidence" <<<"$out"'

# A DEBUG launch: vhsmd refuses to open its data there, so no client ever gets a verdict from one (the client's own
# refusal of DEBUG without --allow-debug is ServerVerifyCLITests' wrongMeasurementDebugAndUnnamedRoot… test).
kill "$server" 2>/dev/null
wait "$server" 2>/dev/null
server=
serve --measurement "$measurement" --policy 0xB0000
check "vhsmd does not serve on a DEBUG launch" '! start "$work/debug-data" && grep -q "DEBUG" "$work/vhsmd.log"'
server=

# Nobody listening.
kill "$emulator" 2>/dev/null
closed=$(free_port)
check "an unreachable server: exit 3 and a sentence naming it" \
  'out=$("$VHSM" server verify "https://127.0.0.1:$closed" --measurement "$measurement" 2>&1); [ $? = 3 ] &&
   grep -q "cannot reach https://127.0.0.1:$closed: connection refused — check the URL and that vhsmd is running" <<<"$out"'
check "a plain-HTTP URL is a usage error (exit 2)" \
  '"$VHSM" server verify "http://127.0.0.1:$closed" --measurement "$measurement" >/dev/null 2>&1; [ $? = 2 ]'

test_end attested-tls-test
