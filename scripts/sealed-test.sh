#!/usr/bin/env bash
# vhsmd in config mode on sealed storage, sealed by the (emulated) SEV-SNP Secure Processor:
#  - sys/init once, its root token sealed to operator_key and opened by 'vhsm operator init' (--cacert), a root token
#    minted by 'vhsm operator generate-root' (--fingerprint), a stream of transit key creations and KV writes, kill -9 in the middle of it,
#  - restart: every acknowledged write is there, old ciphertext decrypts, a second sys/init is refused,
#  - HTTPS by default: a self-signed certificate kept in the data directory, its fingerprint printed; or the
#    operator's certificate; readiness (READY=1) and STOPPING=1 on NOTIFY_SOCKET; SIGTERM stops it cleanly,
#  - a key.pem made readable by others is narrowed to 0600; a certificate near expiry is replaced with a line naming
#    both fingerprints; SIGHUP reopens a renamed audit log,
#  - the same data directory under another chip's emulator is refused at start without operator_key; with it vhsmd
#    waits sealed, 'vhsm operator recover' releases the escrowed barrier key to the attested new launch (a wrong
#    measurement, chain or key releases nothing), old ciphertext decrypts, and the next start unseals by itself,
#  - attested TLS: sys/attestation (no token, sealed or not) binds a fresh nonce and the served certificate's SPKI
#    (the self-signed one or the operator's), the self-signed certificate carries the evidence extension, and it is
#    re-issued for the same key on another chip.
# Usage: VHSMD=path/to/vhsmd-built-with-trait-Emulator VHSM=path/to/vhsm scripts/sealed-test.sh
set -uo pipefail
VHSMD=${VHSMD:?} VHSM=${VHSM:?}
. "$(dirname "$0")/lib/test-env.sh"
test_begin
port=$(free_port)
url=https://127.0.0.1:$port
cacert=$work/data/tls/cert.pem
c() { curl -s --cacert "$cacert" "$@"; }
# What systemd's NOTIFY_SOCKET receives, one datagram per line.
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1])
while True:
    with open(sys.argv[2], "a") as f: f.write(s.recv(4096).decode().replace("\n", " ") + "\n")
' "$work/notify.sock" "$work/notify.log" &
pids+=($!)

"$VHSM" emulator init --state "$work/chip" --product genoa >/dev/null 2>&1
"$VHSM" emulator init --state "$work/other" --product genoa >/dev/null 2>&1
serve() { # serve CHIP: the emulator of $work/CHIP on $work/snp.sock
  emulated_serve "$work/$1" "$work/snp.sock" --measurement "$(printf 'ab%.0s' $(seq 48))"
  emulator=$EMULATOR_PID
}
serve chip
mkdir -p "$work/data"
# The emulator launches at QEMU's default policy 0x30000, which allows SMT (the emulated chips report SMT_EN like
# the real samples); vhsmd refuses that unless the configuration says allow_smt.
# operator_key, as in the guest: sys/init answers the root token only sealed to it.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$work/operator.pem" 2>/dev/null
openssl genpkey -algorithm X25519 -out "$work/other.pem" 2>/dev/null
operator_key=$(openssl pkey -in "$work/operator.pem" -pubout | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')
config() {
  cat >"$work/config-$1.json" <<JSON
{"listener": {"address": "127.0.0.1:$port" ${2:-}}, "storage": {"path": "$work/data"},
 "seal": "emulator:$work/$1", "allow_smt": true, "audit_file": "$work/audit.log", "operator_key": $operator_key}
JSON
  echo "$work/config-$1.json"
}
start() { # start SOCKET [extra listener JSON]: vhsmd with systemd's NOTIFY_SOCKET
  vhsmd_start "$(config "$1" "${2:-}")" "$work/vhsmd.log" env NOTIFY_SOCKET="$work/notify.sock"
  local rc=$?
  server=$VHSMD_PID
  return $rc
}
# The served certificate's fingerprint, from the listener line (a renewal line names two more).
fingerprint() { grep 'listener:' "$work/vhsmd.log" | grep -o 'fingerprint [0-9A-F:]*' | cut -d' ' -f2; }
# SHA-256 of a PEM certificate's DER SubjectPublicKeyInfo, in hex.
spki_sha256() { openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1; }
# sys/attestation for a fresh nonce (curl trusting $1): the answer's fields, and REPORT_DATA (report offset 0x50)
# recomputed in Python from the nonce and the SPKI of the certificate $1, as a third-party client would.
attestation_binds() {
  local nonce
  nonce=$(openssl rand -hex 32)
  curl -s --cacert "$1" "$url/v1/sys/attestation?nonce=$nonce" | python3 -c '
import base64, hashlib, json, sys
nonce, spki = sys.argv[1], sys.argv[2]
data = json.load(sys.stdin)["data"]
assert set(data) == {"format", "nonce", "report", "certificates", "spki_sha256"}, data.keys()
assert data["format"] == "vhsm-attested-tls-v1" and data["nonce"] == nonce and data["spki_sha256"] == spki, data
report = base64.b64decode(data["report"], validate=True)
assert len(report) == 1184, len(report)
assert report[0x50:0x90] == hashlib.sha512(b"vhsm-attested-tls-v1" + bytes.fromhex(nonce) + bytes.fromhex(spki)).digest()
assert len(data["certificates"]) == 3 and all(base64.b64decode(c, validate=True) for c in data["certificates"])
' "$nonce" "$(spki_sha256 "$1")"
}

start snp.sock
check "config mode serves HTTPS with a new self-signed certificate" 'grep -q "HTTPS (new self-signed certificate" "$work/vhsmd.log"'
first_fingerprint=$(fingerprint)
check "the printed fingerprint is the certificate's SHA-256 ($first_fingerprint)" \
  '[ "$(openssl x509 -in "$cacert" -noout -fingerprint -sha256 | cut -d= -f2)" = "$first_fingerprint" ]'
check "the private key is owner-only" '[ "$(stat -c %a "$work/data/tls/key.pem")" = 600 ]'
check "the certificate verifies for 127.0.0.1 with curl --cacert" 'c -o /dev/null "$url/v1/sys/health"'
check "plain HTTP to the TLS listener gets no answer" '! curl -s -o /dev/null "http://127.0.0.1:$port/v1/sys/health"'
check "READY=1 reached NOTIFY_SOCKET" 'sleep 0.2; grep -q "READY=1" "$work/notify.log"'
check "sys/attestation (before init, no token) binds the nonce and the served certificate's SPKI" 'attestation_binds "$cacert"'
check "the start line names sys/attestation, its SPKI and its source" \
  'grep -q "attestation: GET /v1/sys/attestation?nonce=HEX binds SPKI SHA-256 $(spki_sha256 "$cacert"), reports from emulator" "$work/vhsmd.log"'
check "the self-signed certificate carries the evidence extension 1.3.9903.1.1" \
  'openssl x509 -in "$cacert" -noout -text | grep -q "1.3.9903.1.1"'
check "a nonce that is not 64 hex digits is 400 and says what is expected" \
  '[ "$(c -o "$work/short.json" -w "%{http_code}" "$url/v1/sys/attestation?nonce=abcd")" = 400 ] && grep -q "64 hex digits" "$work/short.json"'

check "health before init is 501" '[ "$(c -o /dev/null -w "%{http_code}" "$url/v1/sys/health")" = 501 ]'
check "vhsm operator init refuses an https URL without --cacert or --fingerprint (exit 2)" \
  '"$VHSM" operator init "$url" --key "$work/operator.pem" >/dev/null 2>&1; [ $? = 2 ]'
token=$("$VHSM" operator init "$url" --key "$work/operator.pem" --cacert "$cacert" --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])')
check "vhsm operator init (--cacert) opens the root token sys/init sealed to operator_key" \
  '[ -n "$token" ] && c -H "X-Vault-Token: $token" "$url/v1/auth/token/lookup-self" | grep -q "\"root\""'
check "the audit log holds neither the root token nor its sealed blob" \
  '! grep -q "$token" "$work/audit.log" && ! grep -q "BEGIN VHSM ROOT TOKEN" "$work/audit.log"'
generated=$("$VHSM" operator generate-root "$url" --key "$work/operator.pem" --fingerprint "$first_fingerprint" --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])')
check "vhsm operator generate-root (--fingerprint) mints another root token" \
  '[ -n "$generated" ] && [ "$generated" != "$token" ] && c -H "X-Vault-Token: $generated" "$url/v1/auth/token/lookup-self" | grep -q "\"root\""'
check "another key cannot open a generated root token (exit 1)" \
  '"$VHSM" operator generate-root "$url" --key "$work/other.pem" --cacert "$cacert" >/dev/null 2>&1; [ $? = 1 ]'
check "a wrong --fingerprint is refused before anything is sent (exit 1)" \
  'out=$("$VHSM" operator generate-root "$url" --key "$work/operator.pem" --fingerprint "$(printf "00%.0s" $(seq 32))" 2>&1); [ $? = 1 ] && grep -q "not the pinned fingerprint" <<<"$out"'
check "health after init is 200" '[ "$(c -o /dev/null -w "%{http_code}" "$url/v1/sys/health")" = 200 ]'
H="X-Vault-Token: $token"
c -H "$H" -X POST -d '{"type":"transit"}' "$url/v1/sys/mounts/transit" >/dev/null
c -H "$H" -X POST -d '{"type":"kv","options":{"version":"2"}}' "$url/v1/sys/mounts/secret" >/dev/null
ciphertext=$(c -H "$H" -X POST -d '{"plaintext":"c2VhbGVk"}' "$url/v1/transit/encrypt/first" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["ciphertext"])')

# A stream of writes; each acknowledged one (HTTP 200/204) is recorded; kill -9 lands in the middle.
(
  for i in $(seq 1 400); do
    code=$(c -o /dev/null -w "%{http_code}" -H "$H" -X POST "$url/v1/transit/keys/k$i")
    [ "$code" = 200 ] && echo "key k$i" >>"$work/acked"
    code=$(c -o /dev/null -w "%{http_code}" -H "$H" -X POST -d "{\"data\":{\"n\":\"$i\"}}" "$url/v1/secret/data/s$i")
    [ "$code" = 200 ] && echo "kv s$i $i" >>"$work/acked"
  done
) &
writer=$!
sleep 1.5
kill -9 "$server"
wait "$server" 2>/dev/null
wait "$writer" 2>/dev/null
acked=$(wc -l <"$work/acked")
check "some writes were acknowledged before kill -9 ($acked)" '[ "$acked" -gt 10 ]'

chmod 644 "$work/data/tls/key.pem"
start snp.sock || { echo "sealed-test: vhsmd did not restart:"; cat "$work/vhsmd.log"; }
check "the restart keeps the self-signed certificate" '[ "$(fingerprint)" = "$first_fingerprint" ] && grep -q "HTTPS (self-signed certificate" "$work/vhsmd.log"'
check "a key.pem made readable by others is narrowed back to 0600, and a line says so" \
  '[ "$(stat -c %a "$work/data/tls/key.pem")" = 600 ] && grep -q "key.pem had mode 0644 where 0600 is expected; it is now 0600" "$work/vhsmd.log"'
check "health after restart is 200 (unsealed by the chip)" '[ "$(c -o /dev/null -w "%{http_code}" "$url/v1/sys/health")" = 200 ]'
check "a second sys/init is refused" '[ "$(c -o /dev/null -w "%{http_code}" -X PUT -d "{}" "$url/v1/sys/init")" = 400 ]'
check "vhsm operator init on an initialised vhsmd says so and points to generate-root (exit 1)" \
  'out=$("$VHSM" operator init "$url" --key "$work/operator.pem" --cacert "$cacert" 2>&1); [ $? = 1 ] && grep -q "vhsm operator generate-root" <<<"$out"'
missing=0
while read -r kind name value; do
  if [ "$kind" = key ]; then
    [ "$(c -o /dev/null -w "%{http_code}" -H "$H" "$url/v1/transit/keys/$name")" = 200 ] || missing=$((missing + 1))
  else
    got=$(c -H "$H" "$url/v1/secret/data/$name" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["data"]["n"])' 2>/dev/null)
    [ "$got" = "$value" ] || missing=$((missing + 1))
  fi
done <"$work/acked"
check "every acknowledged write survived kill -9 ($acked checked, $missing missing)" '[ "$missing" = 0 ]'
plain=$(c -H "$H" -X POST -d "{\"ciphertext\":\"$ciphertext\"}" "$url/v1/transit/decrypt/first" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["plaintext"])')
check "a ciphertext from before the crash decrypts" '[ "$plain" = c2VhbGVk ]'
check "nothing in the database files in clear" '! grep -aq "c2VhbGVk" "$work/data"/vhsm.db*'
kill -TERM "$server"
for _ in $(seq 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.05; done
wait "$server"
status=$?
check "SIGTERM stops vhsmd cleanly (exit $status)" '[ "$status" = 0 ] && grep -q "vhsmd: stopped" "$work/vhsmd.log"'
check "STOPPING=1 reached NOTIFY_SOCKET" 'grep -q "STOPPING=1" "$work/notify.log"'

# Rotation of the self-signed certificate: one with 2 days left is replaced at the next start, and a line names the
# reason and both fingerprints. Then logrotate's rename-and-SIGHUP: vhsmd reopens the audit log and goes on.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=vhsmd \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/data/tls/key.pem" -out "$work/data/tls/cert.pem" 2>/dev/null
expiring=$(openssl x509 -in "$cacert" -noout -fingerprint -sha256 | cut -d= -f2)
start snp.sock || { echo "sealed-test: vhsmd did not restart:"; cat "$work/vhsmd.log"; }
check "a certificate 2 days from expiry is replaced, and a line names why, the old and the new fingerprint" \
  'grep -q "replaced the self-signed TLS certificate $cacert (SHA-256 fingerprint $expiring) because it expires at .*, less than 30 days from now; the new one has SHA-256 fingerprint $(fingerprint) " "$work/vhsmd.log" && grep -q "HTTPS (renewed self-signed certificate" "$work/vhsmd.log"'
check "the renewed certificate is served" \
  '[ "$(fingerprint)" != "$expiring" ] && [ "$(c -o /dev/null -w "%{http_code}" "$url/v1/sys/health")" = 200 ]'
mv "$work/audit.log" "$work/audit.log.1"
kill -HUP "$server"
for _ in $(seq 100); do grep -q "SIGHUP: reopened the audit log" "$work/vhsmd.log" && break; sleep 0.05; done
c -o /dev/null -H "$H" "$url/v1/secret/data/after-sighup"
check "SIGHUP reopens the audit log: new lines in a new file, vhsmd still serving" \
  'kill -0 "$server" && grep -q "secret/data/after-sighup" "$work/audit.log" && ! grep -q "secret/data/after-sighup" "$work/audit.log.1"'
kill -TERM "$server"
wait "$server"

# The operator's own certificate.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=vhsm-test \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/op.key" -out "$work/op.crt" 2>/dev/null
start snp.sock ", \"tls_cert_file\": \"$work/op.crt\", \"tls_key_file\": \"$work/op.key\""
check "the operator's certificate is served" \
  'grep -q "operator.s certificate" "$work/vhsmd.log" && curl -s -o /dev/null --cacert "$work/op.crt" "$url/v1/sys/health"'
check "the self-signed certificate no longer verifies" '! c -o /dev/null "$url/v1/sys/health"'
check "with the operator's certificate sys/attestation binds its SPKI, and the certificate is left as it is" \
  'attestation_binds "$work/op.crt" && ! openssl x509 -in "$work/op.crt" -noout -text | grep -q "1.3.9903.1.1"'
kill -9 "$server"

# The same VM configuration, but another chip behind the Secure Processor socket.
kill -9 "$emulator"
serve other
# Without operator_key there is no escrow to recover from: the start is refused, as before.
sed 's/, "operator_key": .*}$/}/' "$(config snp.sock)" >"$work/config-noop.json"
"$VHSMD" --config "$work/config-noop.json" >"$work/other.log" 2>&1 &
other=$!
pids+=($other)
sleep 2
check "without operator_key another chip cannot open the data directory, and vhsmd exits" \
  '! kill -0 $other 2>/dev/null && grep -q "does not open" "$work/other.log"'
check "the refusal says what seal.json binds, sealed chip vs this launch's, and what to do" \
  'grep -q "seal.json binds policy, measurement, tcb at TCB" "$work/other.log" && grep -q "CHIP_ID: sealed on [0-9a-f]*…, this launch [0-9a-f]*…" "$work/other.log" && grep -q "recover the store with the operator key" "$work/other.log" && ! grep -q "Was it sealed" "$work/other.log"'
# With operator_key (the escrow was written at sys/init), vhsmd waits sealed for the operator's recovery.
old_spki=$(spki_sha256 "$cacert")
start snp.sock || { echo "sealed-test: vhsmd did not start on the other chip:"; cat "$work/vhsmd.log"; }
check "on another chip the self-signed certificate is re-issued for the same key, and a line says why" \
  'grep -q "re-issued the self-signed TLS certificate $cacert (SHA-256 fingerprint [0-9A-F:]*) for the same key because CHIP_ID changed" "$work/vhsmd.log" && [ "$(spki_sha256 "$cacert")" = "$old_spki" ]'
check "sys/attestation is served while sealed, for the re-issued certificate" 'attestation_binds "$cacert"'
check "on another chip vhsmd starts SEALED and names the recovery command" \
  'grep -q "SEALED: this launch.s seal does not open it" "$work/vhsmd.log" && grep -q "vhsm operator recover URL" "$work/vhsmd.log" && [ "$(c -o /dev/null -w "%{http_code}" "$url/v1/sys/health")" = 503 ]'
"$VHSM" emulator certs --state "$work/other" --out "$work/other-certs" >/dev/null
measurement=$(printf 'ab%.0s' $(seq 48))
recover() { "$VHSM" operator recover "$url" --cacert "$cacert" --trust-emulator-root "$work/other-certs/ark.pem" "$@"; }
check "vhsm operator recover refuses a launch with another MEASUREMENT and releases nothing (exit 1)" \
  'out=$(recover --key "$work/operator.pem" --measurement "$(printf "cd%.0s" $(seq 48))" 2>&1); [ $? = 1 ] && grep -q "nothing was released" <<<"$out" && [ "$(c -o /dev/null -w "%{http_code}" "$url/v1/sys/health")" = 503 ]'
check "vhsm operator recover refuses a request whose chain it does not trust (exit 1)" \
  '"$VHSM" operator recover "$url" --cacert "$cacert" --key "$work/operator.pem" --measurement "$measurement" >/dev/null 2>&1; [ $? = 1 ]'
check "another private key cannot open the escrow (exit 1)" \
  'recover --key "$work/other.pem" --measurement "$measurement" >/dev/null 2>&1; [ $? = 1 ]'
check "vhsm operator recover releases the escrowed key to the new launch, and vhsmd unseals" \
  'recover --key "$work/operator.pem" --measurement "$measurement" >"$work/recover.out" 2>&1 && grep -q "vhsmd recovered" "$work/recover.out" && [ "$(c -o /dev/null -w "%{http_code}" "$url/v1/sys/health")" = 200 ]'
plain=$(c -H "$H" -X POST -d "{\"ciphertext\":\"$ciphertext\"}" "$url/v1/transit/decrypt/first" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["plaintext"])' 2>/dev/null)
check "after recovery on the other chip, the old ciphertext decrypts with the same transit key" '[ "$plain" = c2VhbGVk ]'
check "the recovery was audited" 'grep -q "sys/unseal/operator" "$work/audit.log"'
kill -TERM "$server"
wait "$server"
start snp.sock
check "the next start on the new chip unseals by itself" \
  '! grep -q SEALED "$work/vhsmd.log" && [ "$(c -o /dev/null -w "%{http_code}" "$url/v1/sys/health")" = 200 ]'
kill -TERM "$server"
wait "$server"

echo "sealed-test: $acked writes acknowledged before kill -9, all checked after the restart"
test_end sealed-test
