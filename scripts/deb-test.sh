#!/usr/bin/env bash
# The Debian package as a user gets it (issue 18): built with scripts/make-deb.sh, checked by lintian (no errors),
# installed with dpkg into a scratch root (dpkg --root, maintainer scripts run chrootless with DPKG_ROOT), then:
# the vhsm user, the enabled unit, the unit under systemd-analyze verify and security, man pages by name, bash
# completion, the installed tools on the README's first commands, vhsmd --dev serving, the shipped configuration
# refused on a host without SEV (creating nothing), a kept conffile on reinstall, and a purge.
#
# usage: scripts/deb-test.sh            # packages $BIN (the debug build of 'make build'), Swift runtime dynamic
#        DEB=out/vhsm_0.1.0_amd64.deb scripts/deb-test.sh      # tests a package 'make deb' built (release, static)
# environment: BIN (the build's bin directory), GENERATE_MANUAL (swift-argument-parser's generate-manual), TESTDATA
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
TESTDATA=${TESTDATA:-$here/../shared/testdata}
work=$(mktemp -d /tmp/vhsm-deb-test-XXXXXX)
vhsmd_pid=
cleanup() {
	[ -n "$vhsmd_pid" ] && kill "$vhsmd_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
pass=0 fail=0
check() { # check NAME COMMAND...: one line per check
	local name=$1
	shift
	if "$@" >"$work/last" 2>&1; then
		pass=$((pass + 1)) && echo "ok   $name"
	else
		fail=$((fail + 1)) && echo "FAIL $name" && sed 's/^/       /' "$work/last" | head -20
	fi
}

dynamic=0
if [ -z "${DEB:-}" ]; then
	dynamic=1
	"$here/scripts/manpages.sh" "$GENERATE_MANUAL" "$BIN" "$work/man" || exit 1
	DEB=$("$here/scripts/make-deb.sh" "$BIN" "$work/man" "$work/out" --dynamic-swift) || exit 1
fi
version=$(sed -n 's/.*static let version = "\(.*\)"/\1/p' "$here/Sources/SNP/Release.swift")
echo "deb-test: $DEB ($(du -h "$DEB" | cut -f1)), version $version"

# lintian: no errors. The debug package links the Swift runtime from this machine's toolchain (RUNPATH
# /opt/swift/...), which lintian rightly calls an error for a package to ship; only that one is expected of it.
lintian_errors() {
	lintian --tag-display-limit 0 "$DEB" >"$work/lintian" 2>&1
	sed 's/^/       /' "$work/lintian" | grep -v 'running with root privileges' | head -30
	local errors
	errors=$(grep '^E: ' "$work/lintian" || true)
	[ "$dynamic" = 1 ] && errors=$(printf '%s\n' "$errors" | grep -v 'custom-library-search-path RUNPATH /opt/swift' || true)
	[ -z "$(printf '%s' "$errors" | tr -d '\n')" ]
}
check "lintian reports no errors" lintian_errors
cat "$work/last"

root=$work/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
dpkg_root() { dpkg --root="$root" --force-script-chrootless --force-depends --log=/dev/null "$@"; }
check "dpkg installs it into a scratch root" dpkg_root -i "$DEB"
check "the package is installed" bash -c "dpkg --root='$root' -s vhsm | grep -q '^Status: install ok installed'"
check "the vhsm system user and group exist" bash -c "grep -q '^vhsm:x:[0-9]*:[0-9]*:vhsm key service:/var/lib/vhsm:' '$root/etc/passwd' && grep -q '^vhsm:' '$root/etc/group'"
check "vhsmd.service is enabled (multi-user.target.wants)" test -L "$root/etc/systemd/system/multi-user.target.wants/vhsmd.service"
check "the configuration is a conffile" bash -c "dpkg --root='$root' -s vhsm | grep -q '/etc/vhsm/vhsmd.json'"
for f in usr/bin/vhsm usr/bin/vhsmd lib/systemd/system/vhsmd.service lib/udev/rules.d/60-vhsm-sev-guest.rules \
	usr/lib/sysusers.d/vhsm.conf etc/logrotate.d/vhsmd usr/share/bash-completion/completions/vhsm \
	usr/share/zsh/vendor-completions/_vhsm usr/share/fish/vendor_completions.d/vhsm.fish usr/share/doc/vhsm/copyright; do
	check "installed: /$f" test -s "$root/$f"
done

# The unit: systemd-analyze verify (the unit with ExecStart pointing into the scratch root, and man finding its
# Documentation= page there), and its exposure under systemd-analyze security.
unit=$work/unit/vhsmd.service
mkdir -p "$work/unit"
sed "s|/usr/bin/vhsmd|$root/usr/bin/vhsmd|" "$root/lib/systemd/system/vhsmd.service" >"$unit"
check "systemd-analyze verify vhsmd.service" env MANPATH="$root/usr/share/man" systemd-analyze verify "$unit"
exposure() {
	systemd-analyze security --offline=yes "$unit" | tail -1 | tee "$work/exposure"
	local score
	score=$(sed -n 's/.*exposure level for vhsmd.service: \([0-9.]*\).*/\1/p' "$work/exposure")
	[ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }'
}
check "systemd-analyze security: exposure at most 2.0 (OK)" exposure
grep -h . "$work/exposure" | sed 's/^/       /'
check "unit: Type=notify, User=vhsm, ProtectSystem=strict, NoNewPrivileges, PrivateTmp" bash -c "
	u='$root/lib/systemd/system/vhsmd.service'
	grep -qx 'Type=notify' \$u && grep -qx 'User=vhsm' \$u && grep -qx 'ProtectSystem=strict' \$u &&
	grep -qx 'NoNewPrivileges=yes' \$u && grep -qx 'PrivateTmp=yes' \$u &&
	grep -qx 'ExecStart=/usr/bin/vhsmd --config /etc/vhsm/vhsmd.json' \$u"

# Man pages by name, as 'man vhsm-report-verify' finds them.
export MANPATH=$root/usr/share/man
check "man -w vhsm-report-verify finds the page" bash -c "man -w vhsm-report-verify | grep -q '$root/usr/share/man/man1/vhsm-report-verify.1.gz'"
check "man vhsm-report-verify shows the command and its options" bash -c "MANWIDTH=100 man vhsm-report-verify 2>/dev/null | tee '$work/page' | grep -q 'vhsm report verify file' && grep -q -- '--trust-emulator-root' '$work/page'"
check "man vhsmd renders without warnings" bash -c "! MANWIDTH=100 man --warnings vhsmd 2>&1 >/dev/null | grep ."
check "whatis vhsm-login names the page" bash -c "lexgrog '$root/usr/share/man/man1/vhsm-login.1.gz' | grep -q '\"vhsm-login - '"
pages=$(ls "$root/usr/share/man/man1" | wc -l)
check "a page for every command ($pages)" test "$pages" -ge 30

# Bash completion, as bash-completion loads it.
completes() { # completes "WORDS..." EXPECTED
	bash -c '
		source /usr/share/bash-completion/bash_completion
		source "$1/usr/share/bash-completion/completions/vhsm"
		export PATH="$1/usr/bin:$PATH"
		read -r -a COMP_WORDS <<<"$2"
		[ "${2: -1}" = " " ] && COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_LINE=$2; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
		fn=$(complete -p vhsm | sed "s/.*-F \([^ ]*\) .*/\1/")
		"$fn" vhsm "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
		echo "completions: ${COMPREPLY[*]}"
		printf "%s\n" "${COMPREPLY[@]}" | grep -qx -- "$3"
	' _ "$root" "$1" "$2"
}
check "completion: 'vhsm rep<TAB>' gives report" completes "vhsm rep" report
check "completion: 'vhsm report ve<TAB>' gives verify" completes "vhsm report ve" verify
check "completion: 'vhsm report verify --tr<TAB>' gives --trust-emulator-root" completes "vhsm report verify --tr" --trust-emulator-root
check "zsh completion defines _vhsm" grep -q '^#compdef vhsm' "$root/usr/share/zsh/vendor-completions/_vhsm"

# The installed tools on the README's first commands.
vhsm=$root/usr/bin/vhsm vhsmd=$root/usr/bin/vhsmd
check "vhsm --version prints $version" bash -c "[ \"\$('$vhsm' --version)\" = '$version' ]"
check "vhsmd --version prints $version" bash -c "[ \"\$('$vhsmd' --version)\" = '$version' ]"
snp=$TESTDATA/snp
check "vhsm report verify (README's first command): GENUINE and ACCEPTABLE" bash -c "cd '$snp' && '$vhsm' report verify milan_v3_vlek_aws_report.bin --cert milan_v3_vlek_aws_vlek.der --at 2025-06-01T00:00:00Z | grep -q 'GENUINE and ACCEPTABLE'"
check "vhsm report verify of an expired VLEK today: exit 1" bash -c "cd '$snp'; '$vhsm' report verify milan_v3_vlek_aws_report.bin --cert milan_v3_vlek_aws_vlek.der >/dev/null; [ \$? = 1 ]"

serve_dev() {
	"$vhsmd" --dev --dev-root-token-id root --dev-listen-address 127.0.0.1:0 >"$work/dev.log" 2>&1 &
	vhsmd_pid=$!
	local url=
	for _ in $(seq 1 600); do
		url=$(sed -n 's/^vhsmd: ready on \(http:[^ ]*\).*/\1/p' "$work/dev.log")
		[ -n "$url" ] && break
		kill -0 "$vhsmd_pid" 2>/dev/null || break
		sleep 0.1
	done
	[ -n "$url" ] || { cat "$work/dev.log"; return 1; }
	curl -sf -H 'X-Vault-Token: root' "$url/v1/sys/health" | grep -q '"initialized":true' || return 1
	kill -TERM "$vhsmd_pid"
	wait "$vhsmd_pid"
	local status=$?
	vhsmd_pid=
	[ "$status" = 0 ]
}
check "vhsmd --dev serves sys/health and stops on SIGTERM with status 0" serve_dev

# The shipped configuration on this host (no /dev/sev-guest): refused with one sentence, exit 1, nothing created.
# Its directories are moved into the scratch root, so nothing outside it is touched.
refused_here() {
	[ -e /dev/sev-guest ] && { echo "this host has /dev/sev-guest: the refusal cannot be shown here"; return 1; }
	sed -e "s|/var/lib/vhsm|$root/var/lib/vhsm|" -e "s|/var/log/vhsm|$root/var/log/vhsm|" \
		"$root/etc/vhsm/vhsmd.json" >"$work/vhsmd.json"
	"$vhsmd" --config "$work/vhsmd.json" >"$work/refused.log" 2>&1
	local status=$?
	cat "$work/refused.log"
	[ "$status" = 1 ] && grep -q "/dev/sev-guest" "$work/refused.log" && [ ! -e "$root/var/lib/vhsm" ]
}
check "the shipped configuration is refused on a host without SEV, and creates nothing" refused_here

# Reinstall keeps the operator's configuration; purge removes the package but never the store.
echo '# edited by the operator' >>"$root/etc/vhsm/vhsmd.json"
check "reinstall keeps an edited /etc/vhsm/vhsmd.json" bash -c "dpkg --root='$root' --force-script-chrootless --force-depends --force-confold --log=/dev/null -i '$DEB' && tail -1 '$root/etc/vhsm/vhsmd.json' | grep -q 'edited by the operator'"
mkdir -p "$root/var/lib/vhsm" && echo sealed >"$root/var/lib/vhsm/store"
check "purge removes the tools and the unit's enablement" bash -c "dpkg --root='$root' --force-script-chrootless --force-depends --log=/dev/null -P vhsm && [ ! -e '$root/usr/bin/vhsmd' ] && [ ! -e '$root/etc/systemd/system/multi-user.target.wants/vhsmd.service' ]"
check "purge leaves the sealed store (/var/lib/vhsm) alone" test -s "$root/var/lib/vhsm/store"

# make install's layout (scripts/install.sh, which the package is built with) under PREFIX=/usr/local in a DESTDIR.
if [ "$dynamic" = 1 ]; then
	staged=$work/staged
	install_local() { DESTDIR=$staged PREFIX=/usr/local "$here/scripts/install.sh" "$BIN" "$work/man"; }
	check "make install's script: PREFIX=/usr/local into a DESTDIR" install_local
	check "  its unit starts /usr/local/bin/vhsmd" grep -qx 'ExecStart=/usr/local/bin/vhsmd --config /etc/vhsm/vhsmd.json' "$staged/usr/local/lib/systemd/system/vhsmd.service"
	check "  its man pages and zsh completion are under /usr/local" test -s "$staged/usr/local/share/man/man1/vhsm-report-verify.1" -a -s "$staged/usr/local/share/zsh/site-functions/_vhsm"
	echo '# edited by the operator' >>"$staged/etc/vhsm/vhsmd.json"
	check "  installing again keeps an edited configuration (the shipped one as vhsmd.json.dist)" bash -c "$(declare -f install_local); staged='$staged' work='$work' here='$here' BIN='$BIN'; install_local && tail -1 '$staged/etc/vhsm/vhsmd.json' | grep -q 'edited by the operator' && cmp -s '$here/packaging/vhsmd.json' '$staged/etc/vhsm/vhsmd.json.dist'"
fi

echo "deb-test: $pass passed, $fail failed"
[ "$fail" = 0 ]
