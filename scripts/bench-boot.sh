#!/usr/bin/env bash
# Boot-to-ready under TCG: QEMU start -> the first HTTP answer on the forwarded port, for
#   baseline  the same kernel with a trivial init (busybox-static: loads the same module closure, configures the
#             network, serves HTTP with busybox httpd; initramfs/baseline), and
#   vhsm      the emulator-flavour initramfs (out/initrd-emulator.img): vhsm-init attests, derives, validates and
#             unlocks the LUKS2 volume, mounts it and starts vhsmd, which answers GET /v1/sys/health.
# The first vhsm boot formats a blank disk (reported apart); the others unlock it. Also prints vhsm-init's own stage
# times from the console and writes out/bench-boot.csv. Usage: VHSM=... scripts/bench-boot.sh [RUNS]
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
VHSM=${VHSM:?}
export VHSM
runs=${1:-3}
out=$here/out
work=$out/bench-boot
port=${PORT:-18230}
run=/tmp/vhsm-bench-boot-$port
mkdir -p "$work"
launch=$here/image/launch
say() { echo "bench-boot: $*"; }
now() { date +%s.%N; }

"$here/initramfs/baseline/build" "$work/baseline-initrd.img" >/dev/null 2>"$work/baseline-build.log" ||
  { cat "$work/baseline-build.log" >&2; exit 1; }
"$here/image/manifest" --initrd "$work/baseline-initrd.img" --append "console=ttyS0 panic=-1 baseline=button" \
  -o "$work/baseline-manifest.json" >/dev/null
[ -f "$out/manifest.json" ] || { say "run 'make image' first (out/manifest.json)"; exit 1; }

# boot_once KIND MANIFEST DISK URL: seconds from QEMU start to the first HTTP answer at URL; the console is kept.
boot_once() {
  local kind=$1 manifest=$2 disk=$3 probe=$4 t0 t1
  "$launch" stop --run-dir "$run" >/dev/null 2>&1
  t0=$(now)
  "$launch" start --manifest "$manifest" --disk "$disk" --state "$work/emulator" --port "$port" --run-dir "$run" \
    --console "$work/$kind.log" --background --quiet >/dev/null 2>&1 || { say "$kind did not start"; return 1; }
  for _ in $(seq 2400); do
    if curl -sk -o /dev/null --max-time 1 "$probe"; then
      t1=$(now)
      awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f\n", b-a}'
      "$launch" powerdown --run-dir "$run" --timeout 60 >/dev/null 2>&1 || "$launch" stop --run-dir "$run" >/dev/null 2>&1
      return 0
    fi
    sleep 0.05
  done
  "$launch" stop --run-dir "$run" >/dev/null 2>&1
  say "$kind never answered on $probe"
  return 1
}
median() { sort -n | awk '{a[NR]=$1} END{print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
stage() { grep -ao "vhsm-init: $1 [0-9]* ms" "$2" | grep -o '[0-9]* ms' | cut -d' ' -f1; }

echo "== boot-to-ready under TCG (QEMU start -> first HTTP answer on the forwarded port), $runs runs each =="
csv=$out/bench-boot.csv
echo "kind,run,seconds,modules_ms,attest_ms,derive_ms,volume_ms,mount_ms,network_ms,vhsm_init_own_ms" >"$csv"
base=()
"$here/image/make-disk" --force "$work/baseline-disk.img" 64M >/dev/null
for i in $(seq "$runs"); do
  t=$(boot_once baseline "$work/baseline-manifest.json" "$work/baseline-disk.img" "http://127.0.0.1:$port/") || exit 1
  base+=("$t")
  echo "baseline,$i,$t,,,,,,," >>"$csv"
  printf '  baseline   run %s  %6.2f s\n' "$i" "$t"
done
"$here/image/make-disk" --force "$work/disk.img" 64M >/dev/null
vhsm=()
for i in $(seq 0 "$runs"); do
  t=$(boot_once "vhsm-$i" "$out/manifest.json" "$work/disk.img" "https://127.0.0.1:$port/v1/sys/health") || exit 1
  log=$work/vhsm-$i.log
  m=$(stage modules "$log") a=$(stage attest "$log") d=$(stage derive "$log") v=$(stage volume "$log")
  mo=$(stage mount "$log") n=$(stage network "$log")
  own=$((a + d + v + mo))
  label=$([ "$i" = 0 ] && echo "first boot (format)" || echo "run $i")
  printf '  vhsm       %-20s %6.2f s   vhsm-init: modules %s, attest %s, derive %s, volume %s, mount %s, network %s ms; own work %s ms\n' \
    "$label" "$t" "$m" "$a" "$d" "$v" "$mo" "$n" "$own"
  echo "$([ "$i" = 0 ] && echo vhsm-first-boot || echo vhsm),$i,$t,$m,$a,$d,$v,$mo,$n,$own" >>"$csv"
  [ "$i" = 0 ] || vhsm+=("$t")
done
b=$(printf '%s\n' "${base[@]}" | median)
v=$(printf '%s\n' "${vhsm[@]}" | median)
own=$(awk -F, '$1 == "vhsm" {print $10}' "$csv" | median)
echo
echo "median boot-to-ready: vhsm $v s, baseline $b s: ratio $(awk -v a="$v" -v b="$b" 'BEGIN{printf "%.2f", a/b}')x"
echo "median vhsm-init own work (attest + derive + validate/unlock + mount), unlocking boots: $own ms (goal < 500 ms)"
echo "initramfs: $(du -b "$out/initrd-emulator.img" | cut -f1) bytes ($(du -h "$out/initrd-emulator.img" | cut -f1)) emulator flavour as built by 'make image'; 'make initramfs' prints both flavours at zstd -22"
echo "csv: $csv"
