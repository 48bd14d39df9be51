#!/usr/bin/env bash
# End-to-end tests of the `vhsm` binary: exit codes on every real AMD vector and on corrupted copies,
# the emulator (one-shot and served), and the cross-check of emulator reports by an independent Python verifier.
# Usage: VHSM=path/to/vhsm TESTDATA=../shared/testdata scripts/cli-test.sh
set -uo pipefail
VHSM=${VHSM:?set VHSM to the vhsm binary}
TESTDATA=${TESTDATA:-$(dirname "$0")/../../shared/testdata}
SNP=$TESTDATA/snp
[ -f "$SNP/vectors.json" ] || { echo "cli-test: $SNP/vectors.json is missing: the tests need ../shared/testdata" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill $server 2>/dev/null; rm -rf "$work"' EXIT
passed=0
failed=0

# expect CODE NAME -- COMMAND...: runs COMMAND, compares its exit code.
expect() {
  local want=$1 name=$2
  shift 3
  "$@" >"$work/out" 2>"$work/err"
  local got=$?
  if [ "$got" = "$want" ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL $name: exit $got, expected $want"
    sed 's/^/    /' "$work/out" "$work/err" | head -20
  fi
}

# check NAME CONDITION-COMMAND...: a plain assertion.
check() {
  local name=$1
  shift
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL $name"; fi
}

vectors=$(python3 -c "
import json
for v in json.load(open('$SNP/vectors.json'))['vectors']:
    if v.get('report'):
        e = v['expect']
        print(v['name'], v['report'], v['endorsement_cert'], v['ica_cert'], v['ark_cert'], v['valid_at'],
              e['measurement'], e['report_data'], e['host_data'], e['reported_tcb_raw'], e['policy'] >> 19 & 1)
")

# A report whose guest policy allows DEBUG is genuine but not acceptable unless --allow-debug (milan_v2_gsg is one).
while read -r name report cert ica ark at measurement rdata hdata tcb debug; do
  r=$SNP/$report
  c=$SNP/$cert
  allow=()
  if [ "$debug" = 1 ]; then
    allow=(--allow-debug)
    expect 1 "$name debug guest refused" -- "$VHSM" report verify "$r" --cert "$c" --at "$at"
    check "$name refusal names DEBUG" grep -q "GENUINE but NOT ACCEPTABLE" "$work/out"
    check "$name refusal names the policy" grep -q "POLICY: expected debug not allowed" "$work/out"
  fi
  expect 0 "$name genuine" -- "$VHSM" report verify "$r" --cert "$c" --at "$at" "${allow[@]}"
  expect 0 "$name with chain" -- "$VHSM" report verify "$r" --cert "$c" --chain <(cat "$SNP/$ica" "$SNP/$ark") --at "$at" "${allow[@]}"
  # The chain passed where the VCEK or VLEK goes: a usage error that says where it goes.
  expect 2 "$name chain as --cert" -- "$VHSM" report verify "$r" --cert <(cat "$SNP/$ica" "$SNP/$ark") --at "$at"
  check "$name says: use --chain" grep -q "not a VCEK or VLEK: pass it with --chain" "$work/err"
  expect 0 "$name reference values" -- "$VHSM" report verify "$r" --cert "$c" --at "$at" "${allow[@]}" \
    --measurement "$measurement" --report-data "$rdata" --host-data "$hdata" --min-tcb "$tcb"
  expect 1 "$name wrong measurement" -- "$VHSM" report verify "$r" --cert "$c" --at "$at" --measurement "$(printf '00%.0s' $(seq 48))"
  expect 0 "$name show" -- "$VHSM" report show "$r"
  expect 0 "$name show json" -- "$VHSM" report show "$r" --json
  check "$name json measurement" grep -q "\"measurement\" : \"$measurement\"" "$work/out"
  expect 0 "$name verify json" -- "$VHSM" report verify "$r" --cert "$c" --at "$at" --json "${allow[@]}"
  check "$name verify json genuine" python3 -c "import json,sys; d=json.load(open('$work/out')); sys.exit(0 if d['genuine'] and d['acceptable'] else 1)"
  for offset in 0 4 8 0x50 0x90 0xC0 0x140 0x180 0x1A0 0x1E0 0x29F 0x2A0 0x2E8 0x2D0 0x330 0x49F; do
    cp "$r" "$work/bad.bin"
    printf "$(printf '\\x%02x' $(( $(od -An -tu1 -j $((offset)) -N1 "$r") ^ 0x10 )))" \
      | dd of="$work/bad.bin" bs=1 seek=$((offset)) conv=notrunc status=none
    expect 1 "$name flipped byte $offset" -- "$VHSM" report verify "$work/bad.bin" --cert "$c" --at "$at"
  done
  head -c 1000 "$r" >"$work/short.bin"
  expect 2 "$name truncated" -- "$VHSM" report verify "$work/short.bin" --cert "$c" --at "$at"
  cat "$r" "$r" >"$work/long.bin"
  expect 2 "$name oversized" -- "$VHSM" report verify "$work/long.bin" --cert "$c" --at "$at"
done <<<"$vectors"

# A certificate from another vector, garbage certificates, bad options.
expect 1 "other chip's VCEK" -- "$VHSM" report verify "$SNP/milan_v2_virtee_report.bin" --cert "$SNP/milan_v2_gsg_vcek.der" --at 2023-04-04T19:23:43Z
expect 1 "expired VLEK now" -- "$VHSM" report verify "$SNP/milan_v3_vlek_aws_report.bin" --cert "$SNP/milan_v3_vlek_aws_vlek.der"
head -c 300 /dev/urandom >"$work/garbage.der"
expect 2 "garbage certificate" -- "$VHSM" report verify "$SNP/milan_v2_gsg_report.bin" --cert "$work/garbage.der"
check "garbage certificate names the file" grep -q "garbage.der" "$work/err"
expect 2 "missing report" -- "$VHSM" report verify "$work/nope.bin" --cert "$SNP/milan_v2_gsg_vcek.der"
expect 2 "no certificate" -- "$VHSM" report verify "$SNP/milan_v2_gsg_report.bin"
expect 2 "short measurement" -- "$VHSM" report verify "$SNP/milan_v2_gsg_report.bin" --cert "$SNP/milan_v2_gsg_vcek.der" --measurement abcd
expect 2 "odd hex" -- "$VHSM" report verify "$SNP/milan_v2_gsg_report.bin" --cert "$SNP/milan_v2_gsg_vcek.der" --host-data abc
expect 2 "bad time" -- "$VHSM" report verify "$SNP/milan_v2_gsg_report.bin" --cert "$SNP/milan_v2_gsg_vcek.der" --at yesterday
expect 2 "unknown option" -- "$VHSM" report verify "$SNP/milan_v2_gsg_report.bin" --frobnicate
# A usage error is one line and a hint naming the command's --help, ArgumentParser's own errors as ours.
check "unknown option: one line and a hint" diff <(printf '%s\n' "vhsm: unknown option '--frobnicate'" \
  "vhsm: see 'vhsm report verify --help'") "$work/err"
expect 2 "missing argument" -- "$VHSM" key derive --emulator "$work/none.sock"
check "missing argument: one line and a hint" diff <(printf '%s\n' "vhsm: missing expected argument '--root <root>'" \
  "vhsm: see 'vhsm key derive --help'") "$work/err"
expect 2 "a usage error of the command's own" -- "$VHSM" key derive --root vcek --fields policy,colour --emulator "$work/none.sock"
check "the command's usage error has the hint" sh -c "[ \$(wc -l <'$work/err') = 2 ] && tail -1 '$work/err' | grep -qx \"vhsm: see 'vhsm key derive --help'\""
expect 2 "an unknown command" -- "$VHSM" reprot show x
check "an unknown command: the root's --help" grep -qx "vhsm: see 'vhsm --help'" "$work/err"
expect 0 "help command" -- "$VHSM" help report verify
check "help command prints the exit codes" grep -q "Exit codes: 0 genuine and acceptable" "$work/out"
expect 0 "completion script" -- "$VHSM" --generate-completion-script bash
check "completion script names a subcommand" grep -q "verify" "$work/out"
cp "$SNP/milan_v3_oak_report.bin" "$work/v9.bin" && printf '\x09' | dd of="$work/v9.bin" bs=1 seek=0 conv=notrunc status=none
expect 1 "unknown version" -- "$VHSM" report show "$work/v9.bin"
check "unknown version is named" grep -q "version 9" "$work/err"
expect 0 "help" -- "$VHSM" report verify --help

# The emulator: every product, one-shot reports verified by vhsm and by the independent Python verifier.
for product in milan genoa turin; do
  st=$work/chip-$product
  expect 0 "emulator init $product" -- "$VHSM" emulator init --state "$st" --product "$product"
  expect 2 "emulator init $product again" -- "$VHSM" emulator init --state "$st" --product "$product"
  expect 0 "emulator certs $product" -- "$VHSM" emulator certs --state "$st" --out "$st/certs"
  expect 0 "emulator report $product" -- "$VHSM" emulator report --state "$st" --report-data c0ffee \
    --measurement "$(printf '5a%.0s' $(seq 48))" --host-data "$(printf '11%.0s' $(seq 32))" -o "$st/report.bin"
  expect 0 "emulator report verifies ($product)" -- "$VHSM" report verify "$st/report.bin" --cert "$st/certs/vcek.der" \
    --chain "$st/certs/ask.pem" --trust-emulator-root "$st/certs/ark.pem" --report-data c0ffee --measurement "$(printf '5a%.0s' $(seq 48))"
  expect 1 "emulator report needs the emulator root ($product)" -- "$VHSM" report verify "$st/report.bin" --cert "$st/certs/vcek.der" --chain "$st/certs/ask.pem"
  check "the refusal names --trust-emulator-root" grep -q "trust-emulator-root" "$work/out"
  expect 0 "python verifies the emulator report ($product)" -- python3 "$here/verify_snp.py" "$st/report.bin" \
    --ark "$st/certs/ark.pem" --ask "$st/certs/ask.pem" --vcek "$st/certs/vcek.der"
  cp "$st/report.bin" "$work/bad.bin" && printf '\xff' | dd of="$work/bad.bin" bs=1 seek=$((0x90)) conv=notrunc status=none
  expect 1 "python rejects a changed emulator report ($product)" -- python3 "$here/verify_snp.py" "$work/bad.bin" \
    --ark "$st/certs/ark.pem" --ask "$st/certs/ask.pem" --vcek "$st/certs/vcek.der"
done
expect 2 "emulator without state" -- "$VHSM" emulator report --state "$work/none" --report-data 00 -o "$work/x.bin"
expect 1 "emulator refuses a policy without bit 17" -- "$VHSM" emulator report --state "$work/chip-milan" --report-data 00 --policy 0x10000 -o "$work/x.bin"

# The served emulator: report get (extended, with certificates), verify via the table, key derivation.
sock=$work/snp.sock
"$VHSM" emulator serve --state "$work/chip-genoa" --socket "$sock" --measurement "$(printf '77%.0s' $(seq 48))" --vmpl 1 2>"$work/serve.log" &
server=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
# A second emulator on the same socket is refused; the first keeps its socket and serves on.
expect 1 "a second serve on a socket in use" -- "$VHSM" emulator serve --state "$work/chip-genoa" --socket "$sock"
check "the refusal says the socket is in use" grep -q "is in use: another 'vhsm emulator serve'" "$work/err"
check "the socket is still there" test -S "$sock"
printf 'not a socket\n' >"$work/plain.sock"
expect 1 "serve on a path holding a file" -- "$VHSM" emulator serve --state "$work/chip-genoa" --socket "$work/plain.sock"
check "the file is named and kept" sh -c "grep -q 'is not a unix socket' '$work/err' && grep -q 'not a socket' '$work/plain.sock'"
expect 0 "report get" -- "$VHSM" report get --emulator "$sock" --report-data 0102 --vmpl 1 --certs-out "$work/got" -o "$work/got.bin"
expect 0 "verify with the certificate table" -- "$VHSM" report verify "$work/got.bin" --cert-table "$work/got/certs.bin" \
  --trust-emulator-root "$work/chip-genoa/certs/ark.pem" --report-data 0102
expect 0 "verify with the written certificates" -- "$VHSM" report verify "$work/got.bin" --cert "$work/got/vcek.der" \
  --chain "$work/got/ask.pem" --trust-emulator-root "$work/got/ark.pem"
expect 1 "report get below the guest's VMPL" -- "$VHSM" report get --emulator "$sock" --vmpl 0 -o "$work/x.bin"
check "INVALID_PARAM is named" grep -q "INVALID_PARAM" "$work/err"
expect 0 "key derive" -- "$VHSM" key derive --root vcek --fields policy,measurement,tcb --vmpl 1 --emulator "$sock"
k1=$(cat "$work/out")
expect 0 "key derive again" -- "$VHSM" key derive --root vcek --fields policy,measurement,tcb --vmpl 1 --emulator "$sock"
check "same inputs, same key" test "$k1" = "$(cat "$work/out")"
check "a 32-byte hex key" test ${#k1} = 64
expect 0 "key derive without measurement" -- "$VHSM" key derive --root vcek --fields policy,tcb --vmpl 1 --emulator "$sock"
check "other fields, other key" test "$k1" != "$(cat "$work/out")"
expect 1 "key derive from a missing VLEK" -- "$VHSM" key derive --root vlek --vmpl 1 --emulator "$sock"
check "INVALID_KEY is named" grep -q "INVALID_KEY" "$work/err"
expect 1 "key derive above the committed TCB" -- "$VHSM" key derive --root vcek --fields tcb --tcb ff00000000ffffff --vmpl 1 --emulator "$sock"
expect 2 "key derive unknown field" -- "$VHSM" key derive --root vcek --fields policy,colour --emulator "$sock"
expect 2 "key derive with --tsm" -- "$VHSM" key derive --root vcek --tsm
# A device or emulator that cannot be reached is exit 3 (nothing was asked), not a refusal (1).
expect 3 "report get from a missing device" -- "$VHSM" report get --device "$work/no-sev-guest" -o "$work/x.bin"
check "the missing device is named" grep -q "no-sev-guest" "$work/err"
expect 3 "report get from a stopped emulator" -- "$VHSM" report get --emulator "$work/none.sock" -o "$work/x.bin"
check "the stopped emulator is named" grep -q "^vhsm: cannot reach the Secure Processor (emulator at $work/none.sock)" "$work/err"
expect 3 "key derive from a stopped emulator" -- "$VHSM" key derive --root vcek --emulator "$work/none.sock"
check "nothing was written" test ! -e "$work/x.bin"

# Three TCBs apart, as a host can set them: an update loaded but not committed (CURRENT above COMMITTED) and
# REPORTED_TCB lowered below COMMITTED_TCB. Reports carry all three and are signed by REPORTED_TCB's VCEK; keys
# are pinned to COMMITTED_TCB by default and refused above it.
st=$work/chip-tcbs
committed=04000000000018db current=0400000000001adc reported=02000000000012c8
expect 2 "emulator init refuses CURRENT below COMMITTED" -- "$VHSM" emulator init --state "$st" --product milan \
  --tcb "$current" --current-tcb "$committed"
expect 0 "emulator init with three TCBs" -- "$VHSM" emulator init --state "$st" --product milan --tcb "$committed" \
  --current-tcb "$current" --reported-tcb "$reported"
expect 0 "emulator certs of REPORTED_TCB" -- "$VHSM" emulator certs --state "$st" --out "$st/certs"
expect 0 "emulator report with three TCBs" -- "$VHSM" emulator report --state "$st" --report-data 03 -o "$st/report.bin"
expect 0 "the report verifies with REPORTED_TCB's VCEK" -- "$VHSM" report verify "$st/report.bin" --cert "$st/certs/vcek.der" \
  --chain "$st/certs/ask.pem" --trust-emulator-root "$st/certs/ark.pem" --min-tcb "$reported"
expect 0 "report show json with three TCBs" -- "$VHSM" report show "$st/report.bin" --json
check "REPORTED, COMMITTED, CURRENT and LAUNCH TCB as set" python3 -c "
import json, sys
d = json.load(open('$work/out'))
sys.exit(0 if (d['reported_tcb']['raw'], d['committed_tcb']['raw'], d['current_tcb']['raw'], d['launch_tcb']['raw'])
         == ('$reported', '$committed', '$current', '$current') else 1)"
lowest=01000000000010c0
expect 2 "serve refuses REPORTED_TCB above CURRENT_TCB" -- "$VHSM" emulator serve --state "$st" --socket "$work/x.sock" \
  --reported-tcb 0400000000001bdc
"$VHSM" emulator serve --state "$st" --socket "$work/tcb.sock" --reported-tcb "$lowest" 2>"$work/serve-tcb.log" &
tcbserver=$!
for _ in $(seq 100); do [ -S "$work/tcb.sock" ] && break; sleep 0.05; done
expect 0 "report get under a host-lowered REPORTED_TCB" -- "$VHSM" report get --emulator "$work/tcb.sock" -o "$work/low.bin" --certs-out "$work/low"
expect 0 "it verifies with the lowered TCB's VCEK from the table" -- "$VHSM" report verify "$work/low.bin" \
  --cert-table "$work/low/certs.bin" --trust-emulator-root "$st/certs/ark.pem"
expect 0 "key derive pins COMMITTED_TCB by default" -- "$VHSM" key derive --root vcek --fields policy,tcb --emulator "$work/tcb.sock"
kc=$(cat "$work/out")
expect 0 "key derive at COMMITTED_TCB explicitly" -- "$VHSM" key derive --root vcek --fields policy,tcb --tcb "$committed" --emulator "$work/tcb.sock"
check "the default pin is COMMITTED_TCB" test "$kc" = "$(cat "$work/out")"
expect 1 "key derive at CURRENT_TCB (above COMMITTED) is refused" -- "$VHSM" key derive --root vcek --fields policy,tcb \
  --tcb "$current" --emulator "$work/tcb.sock"
check "INVALID_PARAM is named" grep -q "INVALID_PARAM" "$work/err"
kill "$tcbserver" 2>/dev/null
wait "$tcbserver" 2>/dev/null

# Launch measurement and ID blocks: the emulator measures the files QEMU would boot, and the firmware model
# accepts an ID block only for that measurement and policy.
M=$TESTDATA/measure
b03=b401308a0b72a6c70fa4be86fcd235377a55110b75dcb911773d934f19b9c93ec887086d2f548d691f1718e96eba2c0f
launch=(--ovmf "$M/OVMF.amdsev.fd" --kernel "$M/kernel-synthetic.bin" --initrd "$M/initrd-synthetic.bin"
  --append "console=ttyS0 loglevel=7" --vcpus 4 --vcpu-type EPYC-Milan)
expect 0 "measure B03" -- "$VHSM" measure "${launch[@]}"
check "measure B03 value" test "$(cat "$work/out")" = "$b03"
expect 0 "measure json" -- "$VHSM" measure "${launch[@]}" --output json
check "measure json value" grep -q "\"measurement\" : \"$b03\"" "$work/out"
expect 1 "measure refuses firmware without SEV metadata" -- "$VHSM" measure --ovmf "$M/ovmf_debian12_CODE_4M.suffix4k.bin" --vcpus 1 --vcpu-type EPYC-v4
check "the refusal says why" grep -q "SEV metadata" "$work/err"
expect 1 "measure refuses a size that is not 4 KiB pages" -- "$VHSM" measure --ovmf "$M/initrd-synthetic.bin" --vcpus 1 --vcpu-type EPYC-v4
expect 2 "measure without a vCPU type" -- "$VHSM" measure --ovmf "$M/OVMF.amdsev.fd" --vcpus 1
expect 2 "measure with an unknown vCPU type" -- "$VHSM" measure --ovmf "$M/OVMF.amdsev.fd" --vcpus 1 --vcpu-type EPYC-Zen9
expect 2 "measure --append -- is an option to argparse too" -- "$VHSM" measure --ovmf "$M/OVMF.amdsev.fd" --vcpus 1 --vcpu-type EPYC --kernel "$M/kernel-synthetic.bin" --append --
expect 0 "measure --append with a leading -- and a space is a value" -- "$VHSM" measure --ovmf "$M/OVMF.amdsev.fd" --vcpus 1 --vcpu-type EPYC --kernel "$M/kernel-synthetic.bin" --append "-- quiet"
expect 2 "measure initrd without kernel" -- "$VHSM" measure --ovmf "$M/OVMF.amdsev.fd" --vcpus 1 --vcpu-type EPYC --initrd "$M/empty.bin"
expect 0 "emulator measures the launch" -- "$VHSM" emulator report --state "$work/chip-milan" --report-data 01 "${launch[@]}" -o "$work/measured.bin"
expect 0 "the report carries the computed measurement" -- "$VHSM" report verify "$work/measured.bin" --cert "$work/chip-milan/certs/vcek.der" \
  --chain "$work/chip-milan/certs/ask.pem" --trust-emulator-root "$work/chip-milan/certs/ark.pem" --measurement "$b03"
openssl ecparam -name secp384r1 -genkey -noout -out "$work/id.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$work/author.pem" 2>/dev/null
expect 0 "idblock create" -- "$VHSM" idblock create --measurement "$b03" --family-id 0f --image-id 1e --svn 2 --policy 0x30000 \
  --id-key "$work/id.pem" --author-key "$work/author.pem" --out "$work/idblock"
check "idblock prints the QEMU fragment" grep -q "^id-block=.*,id-auth=.*,author-key-enabled=on" "$work/out"
idkey=$(sed -n 's/^id_key_digest: //p' "$work/out")
expect 0 "idblock verify" -- "$VHSM" idblock verify "$work/idblock" --measurement "$b03" --policy 0x30000
expect 0 "emulator launch with the ID block" -- "$VHSM" emulator report --state "$work/chip-milan" --report-data 02 "${launch[@]}" \
  --id-block "$work/idblock" -o "$work/id-report.bin"
expect 0 "ID block fields in the report" -- "$VHSM" report show "$work/id-report.bin" --json
check "the report carries the ID key digest" grep -q "\"id_key_digest\" : \"$idkey\"" "$work/out"
check "the report carries the guest SVN" grep -q '"guest_svn" : 2' "$work/out"
expect 1 "a launch with other inputs is refused by the ID block" -- "$VHSM" emulator report --state "$work/chip-milan" --report-data 02 \
  "${launch[@]}" --vcpus 2 --id-block "$work/idblock" -o "$work/x.bin"
check "BAD_MEASUREMENT is named" grep -q "BAD_MEASUREMENT" "$work/err"
expect 1 "a launch with another policy is refused by the ID block" -- "$VHSM" emulator report --state "$work/chip-milan" --report-data 02 \
  "${launch[@]}" --policy 0x70000 --id-block "$work/idblock" -o "$work/x.bin"
check "POLICY_FAILURE is named" grep -q "POLICY_FAILURE" "$work/err"
expect 2 "measurement and ovmf together" -- "$VHSM" emulator report --state "$work/chip-milan" --report-data 02 "${launch[@]}" --measurement "$b03" -o "$work/x.bin"

echo "cli-test: $passed passed, $failed failed"
[ "$failed" = 0 ]
