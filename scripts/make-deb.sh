#!/bin/sh
# Builds the Debian package of vhsm with dpkg-deb: vhsm and vhsmd, man pages, completions, vhsmd's systemd unit,
# the vhsm user (sysusers.d), the udev rule for /dev/sev-guest, logrotate, and /etc/vhsm/vhsmd.json (a conffile).
# Depends: from dpkg-shlibdeps on the binaries.
#
# usage: scripts/make-deb.sh BINDIR MANPAGES_DIR OUTDIR [--dynamic-swift]
#   --dynamic-swift: the binaries link the Swift runtime dynamically (a debug build from this machine's toolchain,
#   used by 'make deb-test' to test the packaging without a release build); the package then runs only where that
#   toolchain is installed, and its Description says so. 'make deb' builds with --static-swift-stdlib instead.
set -eu
bindir=$1 pages=$2 out=$3 dynamic=${4:-}
here=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's/.*static let version = "\(.*\)"/\1/p' "$here/Sources/SNP/Release.swift")
arch=$(dpkg --print-architecture)
[ -n "$version" ] || { echo "make-deb: no version in Sources/SNP/Release.swift" >&2; exit 2; }
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git -C "$here" log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
DESTDIR=$root PREFIX=/usr SYSCONFDIR=/etc UNITDIR=/lib/systemd/system UDEVRULESDIR=/lib/udev/rules.d \
	SYSUSERSDIR=/usr/lib/sysusers.d ZSHDIR=/usr/share/zsh/vendor-completions COMPRESS_MAN=1 \
	"$here/scripts/install.sh" "$bindir" "$pages" >/dev/null
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$root/usr/bin/vhsm" "$root/usr/bin/vhsmd"

doc=$root/usr/share/doc/vhsm
install -d "$doc"
install -m 0644 "$here/packaging/deb/copyright" "$doc/copyright"
date_r=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
commit=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
printf 'vhsm (%s) unstable; urgency=medium\n\n  * Built from commit %s.\n\n -- vhsm developers <vhsm@vhsm.dev>  %s\n' \
	"$version" "$commit" "$date_r" | gzip -9n >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"

install -d "$root/DEBIAN"
for script in postinst prerm postrm; do install -m 0755 "$here/packaging/deb/$script" "$root/DEBIAN/$script"; done
printf '/etc/vhsm/vhsmd.json\n/etc/logrotate.d/vhsmd\n' >"$root/DEBIAN/conffiles"

# Depends from the binaries' shared libraries (dpkg-shlibdeps needs a debian/control to read).
mkdir -p "$work/src/debian"
printf 'Source: vhsm\n\nPackage: vhsm\nArchitecture: any\n' >"$work/src/debian/control"
missing=
[ "$dynamic" = --dynamic-swift ] && missing=--ignore-missing-info
depends=$(cd "$work/src" && dpkg-shlibdeps $missing -O "$root/usr/bin/vhsm" "$root/usr/bin/vhsmd" 2>/dev/null \
	| sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "make-deb: dpkg-shlibdeps found no dependencies for the binaries" >&2; exit 1; }
description="virtual HSM for AMD SEV-SNP confidential VMs (Vault-compatible key service)"
note=
if [ "$dynamic" = --dynamic-swift ]; then
	note=" .
 This build links the Swift runtime dynamically: it runs only where the
 Swift toolchain that built it is installed. 'make deb' builds the package
 to ship."
fi
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: vhsm
Version: $version
Architecture: $arch
Maintainer: vhsm developers <vhsm@vhsm.dev>
Installed-Size: $size
Depends: $depends, systemd, init-system-helpers (>= 1.52)
Section: admin
Priority: optional
Description: $description
 vhsm keeps keys where nobody outside the measured VM, not the cloud provider
 and not its admins, can read them. vhsmd serves a Vault/OpenBao-compatible
 API (tokens, ACL policies, transit, KV v2, workload login with SEV-SNP
 evidence, OIDC identity tokens) and seals its store with a key from the AMD
 SEV-SNP Secure Processor. vhsm reads, gets and verifies SEV-SNP attestation
 reports, predicts launch measurements, checks a running vhsmd over attested
 TLS and logs a workload in with its own evidence.
 .
 The vhsmd service (vhsmd.service) runs as the vhsm user with
 /etc/vhsm/vhsmd.json; it starts only on an SEV-SNP guest (/dev/sev-guest).
$note
CONTROL
sed -i '/^$/d' "$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort | xargs md5sum) \
	>"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control" "$root/DEBIAN/conffiles"
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$out"
deb=$out/vhsm_${version}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
