#!/usr/bin/env bash
# Power cut during first-boot provisioning (issue 16, item 4), in QEMU (TCG) with the emulator-flavour guest.
# For each point of a first boot on a blank disk: boot with 'image/launch --power-cut POINT' (the emulator build of
# vhsm-init syncs, prints 'vhsm-init: test power cut at POINT' and blocks), kill -9 QEMU once the line is on the
# console, then boot again without the cut and require that provisioning completes (vhsmd answers on the forwarded
# port) or, for a volume that reached ready, that it is unlocked and never formatted again.
#   after-header, after-keyslot   token-less header with this chip's provisioning mark: formatted again
#   after-token, mkfs             token in state provisioning: resumed (new filesystem), then marked ready
#   integrity-wipe                (vhsm.integrity) resumed: the wipe runs again, then mkfs, ready
#   vhsmd-first-writes            the volume was ready before vhsmd started: unlocked, same LUKS UUID, no format
# Negative checks on copies of the cut disks: another chip (another emulator state) refuses a provisioning mark and
# a provisioning token, and writes nothing; a ready volume on another chip is refused and not written either.
# Prints a matrix: point, cut seen, next boot outcome.
# Usage: VHSM=.build/debug/vhsm GUEST_BIN=.build-emulator/release scripts/powercut-provision-test.sh [POINT ...]
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/lib/qemu-env.sh"
qemu_begin powercut

# qemu_fw_cfg: the emulator build reads the cut point from fw_cfg (loaded only by the test hook, if present).
qemu_initrd cut "$work/vhsmd-base.json" -- --module qemu_fw_cfg
qemu_manifest "$work/initrd-cut.img"
cmdline=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cmdline"]["value"])' "$work/manifest.json")

serves() { curl -sk --max-time 20 -o /dev/null "$url/v1/sys/health"; }
luks_uuid() { grep -aoE "$1 [0-9a-f-]{36}" "$2" | head -1 | awk '{print $NF}'; }

declare -A seen outcome
points=("$@")
[ ${#points[@]} = 0 ] && points=(after-header after-keyslot after-token mkfs integrity-wipe vhsmd-first-writes)
for point in "${points[@]}"; do
  say "$point: first boot on a blank disk, power cut at $point"
  disk=$work/disk-$point.img
  "$here/image/make-disk" "$disk" 64M >/dev/null
  append=()
  [ "$point" = integrity-wipe ] && append=(--append "$cmdline vhsm.integrity")
  boot "cut-$point" "$disk" chip "${append[@]}" --power-cut "$point"
  if wait_for "test power cut at $point"; then seen[$point]=yes; else seen[$point]=no; fi
  cut_log=$console
  cut_power
  check "$point: the guest reached the point and printed the cut line" '[ "${seen[$point]}" = yes ]'
  formatted_uuid=$(luks_uuid "formatting LUKS2" "$cut_log")
  # What the host sees of the cut disk (vhsm volume inspect's state), and its exit code.
  case $point in
    after-header | after-keyslot) expected_state=unfinished ;;
    after-token | mkfs | integrity-wipe) expected_state=provisioning ;;
    *) expected_state=luks2 ;;
  esac
  check "$point: vhsm volume inspect on the host says $expected_state (exit 0)" \
    'inspected=$("$VHSM" volume inspect "$disk" --json) && grep -q "\"state\" : \"$expected_state\"" <<<"$inspected"'

  # Another chip must refuse what this one left, and write nothing (before this chip recovers it).
  case $point in
    after-keyslot | after-token | vhsmd-first-writes)
      cp --sparse=always "$disk" "$work/other-$point.img"
      before=$(digest "$work/other-$point.img")
      boot "other-$point" "$work/other-$point.img" other-chip "${append[@]}" && wait_exit
      case $point in
        after-keyslot) check "$point: another chip refuses this chip's provisioning mark, never formats it" \
          'has "not this launch'"'"'s own unfinished first boot" && ! has "formatting LUKS2"' ;;
        after-token) check "$point: another chip refuses this chip's provisioning token, never resumes it" \
          'has "volume failed" && ! has "resuming provisioning" && ! has "formatting LUKS2"' ;;
        *) check "$point: another chip refuses the ready volume, never formats it" \
          'has "volume failed" && ! has "formatting LUKS2"' ;;
      esac
      check "$point: the other chip's boot wrote nothing to the disk" \
        '[ "$(digest "$work/other-$point.img")" = "$before" ]'
      ;;
  esac

  say "$point: the next boot, without the cut"
  boot "next-$point" "$disk" chip "${append[@]}"
  if wait_for 'vhsmd: ready on' && serves; then
    if has "formatting it again"; then outcome[$point]="reformatted own header, ready, vhsmd serves"
    elif has "resuming provisioning"; then outcome[$point]="resumed, ready, vhsmd serves"
    elif has "unlocked as"; then outcome[$point]="unlocked (ready, not formatted), vhsmd serves"
    else outcome[$point]="vhsmd serves (?)"; fi
  else
    outcome[$point]="FAILED: $(grep -a -m1 -A1 'failed' "$console" | tr '\n' ' ' | cut -c1-150)"
  fi
  check "$point: the next boot completed and vhsmd answers on the forwarded port" 'has "vhsmd: ready on" && serves'
  case $point in
    after-header | after-keyslot)
      check "$point: its own token-less header was formatted again, same LUKS UUID" \
        'has "formatting it again" && [ -n "$formatted_uuid" ] && has "formatting LUKS2 $formatted_uuid" && has "is ready"'
      ;;
    after-token | mkfs | integrity-wipe)
      check "$point: provisioning resumed (no new header) and the volume was marked ready" \
        'has "resuming provisioning" && ! has "formatting LUKS2" && has "is ready (provisioning finished"'
      [ "$point" = integrity-wipe ] && check "$point: the integrity wipe ran again to 100%" 'has "integrity wipe 100%"'
      ;;
    vhsmd-first-writes)
      check "$point: the cut boot had marked the volume ready before vhsmd started" \
        'grep -aq "is ready (provisioning finished" "$cut_log"'
      check "$point: the ready volume was unlocked, never formatted or resumed, same LUKS UUID" \
        '! has "formatting" && ! has "resuming" && has "unlocked as /dev/mapper/vhsm (LUKS $formatted_uuid)"'
      ;;
  esac
  powerdown
  check "$point: the volume verifies on the host (vhsm volume inspect)" '"$VHSM" volume inspect "$disk" >/dev/null'
  rm -f "$disk" "$work/other-$point.img"
done

echo
printf '%-20s %-9s %s\n' "point" "cut seen" "next boot"
for point in "${points[@]}"; do printf '%-20s %-9s %s\n' "$point" "${seen[$point]}" "${outcome[$point]}"; done
echo
qemu_end
