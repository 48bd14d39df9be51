#!/usr/bin/env bash
# make bench: report verification in-process and as a whole process, vhsm against the named peer measured in
# the same run (Python `cryptography`, scripts/verify_snp.py, which does the same checks). Figures go to stdout
# and out/bench-verify.csv.
set -euo pipefail
VHSM=${VHSM:?} BENCH=${BENCH:?}
TESTDATA=${TESTDATA:-$(dirname "$0")/../../shared/testdata}
here=$(cd "$(dirname "$0")" && pwd)
out=$(dirname "$here")/out
mkdir -p "$out"
snp=$TESTDATA/snp
vector=milan_v3_oak
report=$snp/${vector}_report.bin ark=$snp/ark_milan.pem ask=$snp/ask_milan.pem vcek=$snp/${vector}_vcek.der
at=$(python3 -c "import json; print([v for v in json.load(open('$snp/vectors.json'))['vectors'] if v['name']=='$vector'][0]['valid_at'])")

echo "== report verification, $vector (parse report + ARK + ASK + VCEK, chain, signature) =="
swift_rate=$("$BENCH" verify --report "$report" --ark "$ark" --ask "$ask" --vcek "$vcek" --at "$at" --seconds 3 | awk '{print $NF}')
python_rate=$(python3 "$here/verify_snp.py" "$report" --ark "$ark" --ask "$ask" --vcek "$vcek" --at "$at" --bench 300 | awk '/verifications/ {print $NF}')

# Whole processes: wall and CPU (user+sys) time per run, averaged over N runs of each.
read -r vhsm_wall vhsm_cpu py_wall py_cpu < <(python3 - "$VHSM" "$here/verify_snp.py" "$report" "$ark" "$ask" "$vcek" "$at" <<'PY'
import os, resource, subprocess, sys, time
vhsm, oracle, report, ark, ask, vcek, at = sys.argv[1:]
def measure(cmd, runs=40):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)  # warm the page cache
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    for _ in range(runs):
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = (time.perf_counter() - start) / runs
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) / runs
    return wall * 1000, cpu * 1000
vw, vc = measure([vhsm, "report", "verify", report, "--cert", vcek, "--chain", ask, "--at", at])
pw, pc = measure([sys.executable, oracle, report, "--ark", ark, "--ask", ask, "--vcek", vcek, "--at", at])
print(f"{vw:.1f} {vc:.1f} {pw:.1f} {pc:.1f}")
PY
)
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
printf '%-44s %12s %12s %8s\n' "measure" "vhsm" "python" "ratio"
printf '%-44s %12s %12s %8s\n' "verifications per second, in-process" "$swift_rate" "$python_rate" "$(ratio "$swift_rate" "$python_rate")x"
printf '%-44s %12s %12s %8s\n' "one 'report verify' process, wall ms" "$vhsm_wall" "$py_wall" "$(ratio "$py_wall" "$vhsm_wall")x"
printf '%-44s %12s %12s %8s\n' "one 'report verify' process, CPU ms" "$vhsm_cpu" "$py_cpu" "$(ratio "$py_cpu" "$vhsm_cpu")x"
{
  echo "measure,vhsm,python_cryptography"
  echo "verifications_per_second,$swift_rate,$python_rate"
  echo "process_wall_ms,$vhsm_wall,$py_wall"
  echo "process_cpu_ms,$vhsm_cpu,$py_cpu"
} >"$out/bench-verify.csv"
echo "saved $out/bench-verify.csv (ratios: higher is better for vhsm)"

echo
echo "== launch measurement: 4 MiB AmdSev OVMF + Debian kernel + Debian initrd, 4 vCPUs (whole processes) =="
measure=$TESTDATA/measure
kernel=$(ls /boot/vmlinuz-* | sort -V | tail -1)
initrd=$(ls /boot/initrd.img-* | sort -V | tail -1)
args=(--mode snp --vcpus 4 --vcpu-type EPYC-Milan --ovmf "$measure/OVMF.amdsev.fd" --kernel "$kernel" --initrd "$initrd"
  --append "console=ttyS0 loglevel=7")
echo "inputs: $(basename "$kernel") ($(stat -c %s "$kernel") bytes), $(basename "$initrd") ($(stat -c %s "$initrd") bytes)"
[ "$("$VHSM" measure "${args[@]}")" = "$(sev-snp-measure "${args[@]}")" ] || { echo "bench: the two tools disagree" >&2; exit 1; }
static=${STATIC_VHSM:-}
read -r m_wall m_cpu r_wall r_cpu s_wall s_cpu < <(python3 - "$VHSM" "${static:-$VHSM}" "${args[@]}" <<'PY'
import resource, shutil, subprocess, sys, time
vhsm, static, args = sys.argv[1], sys.argv[2], sys.argv[3:]
def measure(cmd, runs=10):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    for _ in range(runs):
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = (time.perf_counter() - start) / runs
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall * 1000, (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) / runs * 1000
vw, vc = measure([vhsm, "measure"] + args)
rw, rc = measure([shutil.which("sev-snp-measure")] + args)
sw, sc = measure([static, "measure"] + args)
print(f"{vw:.1f} {vc:.1f} {rw:.1f} {rc:.1f} {sw:.1f} {sc:.1f}")
PY
)
printf '%-44s %12s %12s %8s\n' "measure" "vhsm" "sev-snp-measure" "ratio"
printf '%-44s %12s %12s %8s\n' "one 'measure' process, wall ms" "$m_wall" "$r_wall" "$(ratio "$r_wall" "$m_wall")x"
printf '%-44s %12s %12s %8s\n' "one 'measure' process, CPU ms" "$m_cpu" "$r_cpu" "$(ratio "$r_cpu" "$m_cpu")x"
if [ -n "$static" ]; then
  printf '%-44s %12s %12s %8s\n' "same, static-stdlib vhsm, wall ms" "$s_wall" "$r_wall" "$(ratio "$r_wall" "$s_wall")x"
  printf '%-44s %12s %12s %8s\n' "same, static-stdlib vhsm, CPU ms" "$s_cpu" "$r_cpu" "$(ratio "$r_cpu" "$s_cpu")x"
fi
floor=$(python3 -c "
import hashlib, time
data = open('$initrd', 'rb').read(); t = time.perf_counter(); hashlib.sha256(data).digest()
print(f'{(time.perf_counter() - t) * 1000:.1f}')")
echo "floor: SHA-256 of the initrd alone takes $floor ms here (OpenSSL, SHA-NI); both tools must hash every byte"
{
  echo "measure,vhsm,sev_snp_measure_0_0_13"
  echo "process_wall_ms,$m_wall,$r_wall"
  echo "process_cpu_ms,$m_cpu,$r_cpu"
  [ -n "$static" ] && echo "static_process_wall_ms,$s_wall,$r_wall" && echo "static_process_cpu_ms,$s_cpu,$r_cpu"
  echo "initrd_sha256_floor_ms,$floor,$floor"
} >"$out/bench-measure.csv"
echo "saved $out/bench-measure.csv (goal: at least 5x faster as a whole process)"
