#!/usr/bin/env bash
# Attested TLS through the Python reference client (clients/python/vhsm_attest.py), against vhsmd in config mode on
# the emulator's Secure Processor, on loopback:
#  - the module's own unit tests (binding test vector, the extension's DER, TCB comparison, every refusal on an
#    AMD-shaped PKI made in the test, AMD's real reports and certificates from TESTDATA/snp to the pinned ARKs),
#  - the client trusts vhsmd, and the key it verified is the one openssl s_client sees; --manifest, --ca-out,
#  - refused: another MEASUREMENT (expected and actual named), the emulator root unless named, an unreachable server,
#  - a TLS man in the middle (scripts/mitm-proxy.py, its own key, forwarding everything) is refused by the Python
#    client with both SPKI hashes named, and by 'vhsm server verify',
#  - a recorded answer replayed for another nonce (even served with vhsmd's own key) is refused,
#  - --from-certificate checks the evidence in the certificate's extension and says freshness was not checked,
#  - an hvac user: --ca-out F, then hvac.Client(url, verify=F) talks to vhsmd, and F refuses the proxy,
#  - the operator's own certificate (tls_cert_file): the fresh report binds its key; it carries no evidence,
#  - the other reference values, on a launch with an ID block ('vhsm idblock create', GUEST_SVN 3, an author key)
#    and HOST_DATA: each trusted when met (a key digest alone names the VM) and refused when not, with expected and
#    actual; no identity is a usage error,
#  - a host that withholds the certificates (the proxy with vhsmd's key, --drop-certificates): refused, then trusted
#    with --cert (the VCEK) and --chain (ASK and ARK, 'vhsm emulator certs'), never with an unnamed root.
# Usage: VHSMD=path/to/vhsmd-built-with-trait-Emulator VHSM=path/to/vhsm [TESTDATA=../shared/testdata] \
#          scripts/attested-python-test.sh
set -uo pipefail
VHSMD=${VHSMD:?} VHSM=${VHSM:?}
here=$(cd "$(dirname "$0")/.." && pwd)
client="$here/clients/python/vhsm_attest.py"
. "$(dirname "$0")/lib/test-env.sh"
test_begin
port=$(free_port)
url=https://127.0.0.1:$port
measurement=$(printf 'ab%.0s' $(seq 48))
other_measurement=$(printf 'cd%.0s' $(seq 48))
host_data=$(printf '0f%.0s' $(seq 32))
other_host_data=$(printf 'f0%.0s' $(seq 32))

check "the module's unit tests pass (python3 -m unittest clients/python/test_vhsm_attest.py)" \
  '(cd "$here/clients/python" && python3 -m unittest -v test_vhsm_attest.py) >"$work/unit.log" 2>&1 || { cat "$work/unit.log"; false; }'

emulated_chip "$work/chip" || { echo "attested-python-test: emulator init failed"; exit 1; }
ark=$work/chip/certs/ark.pem
for key in id author; do openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$work/$key.pem" 2>/dev/null; done
"$VHSM" idblock create --measurement "$measurement" --family-id 01 --image-id 02 --svn 3 --policy 0x30000 \
  --id-key "$work/id.pem" --author-key "$work/author.pem" --out "$work/idblock" >"$work/idblock.out"
id_key_digest=$(sed -n 's/^id_key_digest: //p' "$work/idblock.out")
author_key_digest=$(sed -n 's/^author_key_digest: //p' "$work/idblock.out")
emulated_serve "$work/chip" "$work/snp.sock" --measurement "$measurement" --host-data "$host_data" \
  --id-block "$work/idblock" || { echo "attested-python-test: the emulator did not start:"; cat "$work/snp.sock.log"; exit 1; }
mkdir -p "$work/data"
cat >"$work/config.json" <<JSON
{"listener": {"address": "127.0.0.1:$port"}, "storage": {"path": "$work/data"},
 "seal": "emulator:$work/snp.sock", "allow_smt": true}
JSON
vhsmd_start "$work/config.json" "$work/vhsmd.log" || { echo "attested-python-test: vhsmd did not start:"; cat "$work/vhsmd.log"; exit 1; }
server=$VHSMD_PID

verify() { python3 "$client" "$@"; }
spki_of_handshake() { # SHA-256 of the DER SPKI that openssl s_client sees at 127.0.0.1:$1
  openssl s_client -connect "127.0.0.1:$1" </dev/null 2>/dev/null | openssl x509 -pubkey -noout |
    openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1
}
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }

verify "$url" --measurement "$measurement" --trust-emulator-root "$ark" --json >"$work/trusted.json"
status=$?
check "the Python client trusts vhsmd (exit $status)" '[ "$status" = 0 ] && [ "$(json_field "$work/trusted.json" trusted)" = True ]'
check "the key it verified is the key openssl s_client sees ($(spki_of_handshake "$port"))" \
  '[ "$(json_field "$work/trusted.json" spki_sha256)" = "$(spki_of_handshake "$port")" ]'
check "... and the key of vhsmd's certificate file" \
  '[ "$(openssl x509 -in "$work/data/tls/cert.pem" -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum | cut -d" " -f1)" = "$(json_field "$work/trusted.json" spki_sha256)" ]'
echo "{\"format\": \"vhsm-launch-manifest/1\", \"measurement\": \"$measurement\"}" >"$work/manifest.json"
check "--manifest supplies the expected MEASUREMENT" \
  'verify "$url" --manifest "$work/manifest.json" --trust-emulator-root "$ark" >/dev/null'
check "the human verdict names the signer, the root and the TLS key" \
  'out=$(verify "$url" --measurement "$measurement" --trust-emulator-root "$ark"); grep -q "TRUSTED" <<<"$out" && grep -q "VCEK of a Genoa chip" <<<"$out" && grep -q "tls spki *$(spki_of_handshake "$port")" <<<"$out"'

check "another MEASUREMENT is refused with expected and actual (exit 1)" \
  'out=$(verify "$url" --measurement "$other_measurement" --trust-emulator-root "$ark"); [ $? = 1 ] && grep -q "MEASUREMENT: expected $other_measurement, got $measurement" <<<"$out"'
check "the emulator root is not trusted unless named (exit 1)" \
  'out=$(verify "$url" --measurement "$measurement"); [ $? = 1 ] && grep -q "neither an AMD ARK nor the one --trust-emulator-root names" <<<"$out"'
check "--min-tcb above the reported TCB is refused per component (exit 1)" \
  'out=$(verify "$url" --measurement "$measurement" --trust-emulator-root "$ark" --min-tcb 0a00000000001a54); [ $? = 1 ] && grep -q "REPORTED_TCB: expected at least bl 10, tee 0, snp 26, ucode 84 (0a00000000001a54), got .*(snp below)" <<<"$out"'
check "no expected identity is a usage error, even with other reference values (exit 2)" \
  'out=$(verify "$url" --trust-emulator-root "$ark" --host-data "$host_data" 2>&1); [ $? = 2 ] && grep -q "Verifying .some SEV-SNP VM. is not verification" <<<"$out"'
check "--host-data of the launch's HOST_DATA is trusted (exit 0)" \
  'out=$(verify "$url" --measurement "$measurement" --trust-emulator-root "$ark" --host-data "$host_data"); [ $? = 0 ] && grep -q "host data *$host_data" <<<"$out"'
check "another --host-data is refused with expected and actual (exit 1)" \
  'out=$(verify "$url" --measurement "$measurement" --trust-emulator-root "$ark" --host-data "$other_host_data"); [ $? = 1 ] && grep -q "HOST_DATA: expected $other_host_data, got $host_data" <<<"$out"'
check "--id-key-digest of the ID block alone names the VM, with --min-guest-svn 3: trusted (exit 0)" \
  'out=$(verify "$url" --id-key-digest "$id_key_digest" --min-guest-svn 3 --trust-emulator-root "$ark"); [ $? = 0 ] && grep -q "id key digest *$id_key_digest" <<<"$out" && grep -q "guest svn *3" <<<"$out"'
check "another --id-key-digest alone is refused with expected and actual, its only problem (exit 1)" \
  'out=$(verify "$url" --id-key-digest "$other_measurement" --trust-emulator-root "$ark"); [ $? = 1 ] && grep -q "ID_KEY_DIGEST: expected $other_measurement, got $id_key_digest" <<<"$out" && [ "$(grep -c "^  - " <<<"$out")" = 1 ]'
check "vhsm server verify refuses the same --id-key-digest with the same sentence (exit 1)" \
  'out=$("$VHSM" server verify "$url" --id-key-digest "$other_measurement" --trust-emulator-root "$ark" 2>&1); [ $? = 1 ] && grep -q "ID_KEY_DIGEST: expected $other_measurement, got $id_key_digest" <<<"$out"'
check "--min-guest-svn 4 above the launch's GUEST_SVN 3 is refused (exit 1)" \
  'out=$(verify "$url" --id-key-digest "$id_key_digest" --min-guest-svn 4 --trust-emulator-root "$ark"); [ $? = 1 ] && grep -q "GUEST_SVN: expected at least 4, got 3" <<<"$out"'
check "--author-key-digest: the ID block's author key trusted (exit 0), another refused (exit 1)" \
  'verify "$url" --author-key-digest "$other_measurement" --author-key-digest "$author_key_digest" --trust-emulator-root "$ark" >/dev/null && out=$(verify "$url" --author-key-digest "$other_measurement" --trust-emulator-root "$ark"); [ $? = 1 ] && grep -q "AUTHOR_KEY_DIGEST: expected $other_measurement, got $author_key_digest" <<<"$out"'
check "an unreachable server is refused with a sentence (exit 1)" \
  'out=$(verify "https://127.0.0.1:$(free_port)" --measurement "$measurement"); [ $? = 1 ] && grep -q "cannot get evidence from https://127.0.0.1:.*refused" <<<"$out"'

# --ca-out: the verified leaf, for hvac's verify= (and curl --cacert, VAULT_CACERT).
verify "$url" --measurement "$measurement" --trust-emulator-root "$ark" --ca-out "$work/vhsmd-ca.pem" >/dev/null
check "--ca-out writes the verified leaf certificate as PEM" \
  'cmp -s <(openssl x509 -in "$work/vhsmd-ca.pem" -outform DER) <(openssl x509 -in "$work/data/tls/cert.pem" -outform DER)'
check "--ca-out writes nothing when refused" \
  'verify "$url" --measurement "$other_measurement" --trust-emulator-root "$ark" --ca-out "$work/refused.pem" >/dev/null; [ ! -e "$work/refused.pem" ]'
cat >"$work/hvac-client.py" <<'PY'
import sys
import hvac
client = hvac.Client(sys.argv[1], verify=sys.argv[2])  # the file vhsm_attest.py --ca-out wrote
client.token = client.sys.initialize()["root_token"]
health = client.sys.read_health_status(method="GET")
print(health)
sys.exit(not (client.is_authenticated() and health["initialized"] and not health["sealed"]))
PY
check "hvac.Client(url, verify=that file) initialises vhsmd, authenticates and reads sys/health" \
  'python3 "$work/hvac-client.py" "$url" "$work/vhsmd-ca.pem" >"$work/hvac.out" 2>&1 || { cat "$work/hvac.out"; false; }'

# The man in the middle: its own key, everything forwarded, sys/attestation included.
python3 "$here/scripts/mitm-proxy.py" "127.0.0.1:$port" >"$work/mitm.log" 2>&1 &
mitm=$!
pids+=($mitm)
for _ in $(seq 100); do grep -qs "listening on" "$work/mitm.log" && break; sleep 0.05; done
mitm_port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$work/mitm.log" | cut -d: -f2)
mitm_url=https://127.0.0.1:$mitm_port
vhsmd_spki=$(spki_of_handshake "$port")
proxy_spki=$(spki_of_handshake "$mitm_port")
check "the proxy forwards requests to vhsmd (sys/health through it)" \
  '[ "$(curl -sk -o /dev/null -w "%{http_code}" "$mitm_url/v1/sys/health")" = "$(curl -sk -o /dev/null -w "%{http_code}" "$url/v1/sys/health")" ] && [ "$proxy_spki" != "$vhsmd_spki" ]'
check "the Python client refuses the man in the middle, naming both SPKI hashes (exit 1)" \
  'out=$(verify "$mitm_url" --measurement "$measurement" --trust-emulator-root "$ark" --ca-out "$work/mitm-ca.pem"); [ $? = 1 ] && grep -q "expected SPKI SHA-256 $proxy_spki (the certificate in this handshake), the report binds $vhsmd_spki" <<<"$out" && [ ! -e "$work/mitm-ca.pem" ]'
check "the Python client refuses the proxy's certificate with --from-certificate too (exit 1)" \
  'out=$(verify "$mitm_url" --measurement "$measurement" --trust-emulator-root "$ark" --from-certificate); [ $? = 1 ] && grep -q "carries no evidence" <<<"$out"'
check "hvac with the verified file refuses the proxy (certificate verify failed)" \
  '! python3 -c "import hvac, sys; hvac.Client(sys.argv[1], verify=sys.argv[2]).sys.read_health_status(method=\"GET\")" "$mitm_url" "$work/vhsmd-ca.pem" >"$work/hvac-mitm.out" 2>&1 && grep -q "CERTIFICATE_VERIFY_FAILED" "$work/hvac-mitm.out"'
check "vhsm server verify trusts vhsmd itself (exit 0)" \
  '"$VHSM" server verify "$url" --measurement "$measurement" --trust-emulator-root "$ark" >"$work/swift.out" 2>&1 || { cat "$work/swift.out"; false; }'
check "vhsm server verify refuses the man in the middle, naming the proxy's SPKI (exit 1)" \
  'out=$("$VHSM" server verify "$mitm_url" --measurement "$measurement" --trust-emulator-root "$ark" 2>&1); [ $? = 1 ] && grep -q "$proxy_spki" <<<"$out" && grep -q "$vhsmd_spki" <<<"$out"'
kill -TERM "$mitm"
wait "$mitm"
status=$?
check "SIGTERM stops the proxy cleanly (exit $status)" '[ "$status" = 0 ] && grep -q "mitm-proxy: stopped" "$work/mitm.log"'

# Replay: an answer recorded for one nonce, served for another, even over vhsmd's own key.
recorded_nonce=$(printf '5a%.0s' $(seq 32))
curl -sk "$url/v1/sys/attestation?nonce=$recorded_nonce" >"$work/recorded.json"
check "the recorded answer is vhsmd's for nonce $recorded_nonce" \
  'python3 -c "import json,sys; d=json.load(open(sys.argv[1]))[\"data\"]; sys.exit(d[\"nonce\"] != sys.argv[2])" "$work/recorded.json" "$recorded_nonce"'
python3 "$here/scripts/mitm-proxy.py" "127.0.0.1:$port" --cert "$work/data/tls/cert.pem" --key "$work/data/tls/key.pem" \
  --replay "$work/recorded.json" >"$work/replay.log" 2>&1 &
replay=$!
pids+=($replay)
for _ in $(seq 100); do grep -qs "listening on" "$work/replay.log" && break; sleep 0.05; done
replay_port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$work/replay.log" | cut -d: -f2)
check "a replayed answer is refused, naming the recorded nonce (exit 1)" \
  'out=$(verify "https://127.0.0.1:$replay_port" --measurement "$measurement" --trust-emulator-root "$ark"); [ $? = 1 ] && grep -q "the answer is for nonce $recorded_nonce, not for the nonce sent" <<<"$out" && grep -q "replayed" <<<"$out"'
check "vhsm server verify refuses the replayed answer (exit 1)" \
  'out=$("$VHSM" server verify "https://127.0.0.1:$replay_port" --measurement "$measurement" --trust-emulator-root "$ark" 2>&1); [ $? = 1 ] && grep -q "$recorded_nonce" <<<"$out"'
kill -TERM "$replay"

# A host that withholds the certificates: vhsmd's fresh answer (vhsmd's key: the binding holds) without them.
python3 "$here/scripts/mitm-proxy.py" "127.0.0.1:$port" --cert "$work/data/tls/cert.pem" --key "$work/data/tls/key.pem" \
  --drop-certificates >"$work/bare.log" 2>&1 &
bare=$!
pids+=($bare)
for _ in $(seq 100); do grep -qs "listening on" "$work/bare.log" && break; sleep 0.05; done
bare_url=https://127.0.0.1:$(grep -o 'listening on 127.0.0.1:[0-9]*' "$work/bare.log" | cut -d: -f2)
check "an answer without certificates is refused: no VCEK or VLEK (exit 1)" \
  'out=$(verify "$bare_url" --measurement "$measurement" --trust-emulator-root "$ark"); [ $? = 1 ] && grep -q "carries no VCEK or VLEK and none was given (--cert)" <<<"$out" && [ "$(grep -c "^  - " <<<"$out")" = 1 ]'
check "--cert (the VCEK, DER) and --chain (ASK and ARK, PEM) stand in for them: trusted (exit 0)" \
  'out=$(verify "$bare_url" --measurement "$measurement" --trust-emulator-root "$ark" --cert "$work/chip/certs/vcek.der" --chain "$work/chip/certs/cert_chain.pem"); [ $? = 0 ] && grep -q "VCEK of a Genoa chip" <<<"$out" || { echo "$out"; false; }'
check "... but the ARK in --chain is not trusted unless named (exit 1)" \
  'out=$(verify "$bare_url" --measurement "$measurement" --cert "$work/chip/certs/vcek.der" --chain "$work/chip/certs/cert_chain.pem"); [ $? = 1 ] && grep -q "neither an AMD ARK nor the one --trust-emulator-root names" <<<"$out"'
check "vhsm server verify trusts the same with the same --cert and --chain (exit 0)" \
  '"$VHSM" server verify "$bare_url" --measurement "$measurement" --trust-emulator-root "$ark" --cert "$work/chip/certs/vcek.der" --chain "$work/chip/certs/cert_chain.pem" >"$work/swift-bare.out" 2>&1 || { cat "$work/swift-bare.out"; false; }'
kill -TERM "$bare"

# The evidence in the certificate (extension 1.3.9903.1.1, all-zero nonce).
check "--from-certificate trusts the certificate's evidence and says freshness was not checked (exit 0)" \
  'out=$(verify "$url" --measurement "$measurement" --trust-emulator-root "$ark" --from-certificate); [ $? = 0 ] && grep -q "freshness *NOT checked" <<<"$out"'
check "--from-certificate refuses another MEASUREMENT (exit 1)" \
  'out=$(verify "$url" --measurement "$other_measurement" --trust-emulator-root "$ark" --from-certificate); [ $? = 1 ] && grep -q "MEASUREMENT: expected $other_measurement" <<<"$out"'
check "the certificate carries the extension non-critical, and its DER parses with the module" \
  'python3 -c "
import sys; sys.path.insert(0, sys.argv[2]); import vhsm_attest
from cryptography import x509
c = x509.load_pem_x509_certificate(open(sys.argv[1], \"rb\").read())
e = c.extensions.get_extension_for_oid(x509.ObjectIdentifier(vhsm_attest.EVIDENCE_OID))
d = vhsm_attest.parse_evidence_extension(e.value.value)
sys.exit(e.critical or d[\"nonce\"] != bytes(32) or len(d[\"report\"]) != 1184 or not d[\"certificates\"])
" "$work/data/tls/cert.pem" "$here/clients/python"'

kill -TERM "$server"
wait "$server"

# The operator's own certificate: sys/attestation binds its key; it carries no evidence of its own.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=vhsm-operator \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/op.key" -out "$work/op.crt" 2>/dev/null
python3 - "$work/config.json" "$work/op.crt" "$work/op.key" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["listener"].update(tls_cert_file=sys.argv[2], tls_key_file=sys.argv[3])
json.dump(config, open(sys.argv[1], "w"))
PY
vhsmd_start "$work/config.json" "$work/vhsmd.log" || { echo "attested-python-test: vhsmd did not start with the operator's certificate:"; cat "$work/vhsmd.log"; }
server=$VHSMD_PID
op_spki=$(openssl x509 -in "$work/op.crt" -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)
check "with the operator's certificate, the Python client trusts the report bound to its key ($op_spki)" \
  'verify "$url" --measurement "$measurement" --trust-emulator-root "$ark" --json >"$work/op.json" && [ "$(json_field "$work/op.json" spki_sha256)" = "$op_spki" ]'
check "... and --from-certificate says the operator's certificate carries no evidence (exit 1)" \
  'out=$(verify "$url" --measurement "$measurement" --trust-emulator-root "$ark" --from-certificate); [ $? = 1 ] && grep -q "carries no evidence (extension 1.3.9903.1.1)" <<<"$out"'
kill -TERM "$server"
wait "$server"
test_end attested-python-test
