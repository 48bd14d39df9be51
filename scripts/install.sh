#!/bin/sh
# Installs vhsm and vhsmd with their man pages, shell completions, systemd unit, sysusers and udev files and a
# commented default configuration: what 'make install' and 'make deb' run (see the Makefile for the variables).
#
# usage: scripts/install.sh BINDIR MANPAGES_DIR
#   environment: DESTDIR, PREFIX, SYSCONFDIR, UNITDIR, UDEVRULESDIR, SYSUSERSDIR, ZSHDIR, COMPRESS_MAN (1: gzip -9n)
# An existing configuration is never overwritten: the shipped one goes beside it as vhsmd.json.dist.
set -eu
bindir=$1 pages=$2
: "${DESTDIR:=}" "${PREFIX:=/usr/local}" "${SYSCONFDIR:=/etc}"
: "${UNITDIR:=$PREFIX/lib/systemd/system}" "${UDEVRULESDIR:=$PREFIX/lib/udev/rules.d}"
: "${SYSUSERSDIR:=$PREFIX/lib/sysusers.d}" "${ZSHDIR:=$PREFIX/share/zsh/site-functions}" "${COMPRESS_MAN:=0}"
here=$(cd "$(dirname "$0")/.." && pwd)
root=$DESTDIR

for tool in vhsm vhsmd; do
	[ -x "$bindir/$tool" ] || { echo "install: $bindir/$tool is missing: build it first (make install does)" >&2; exit 2; }
done

install -d "$root$PREFIX/bin" "$root$PREFIX/share/man/man1" "$root$PREFIX/share/bash-completion/completions" \
	"$root$ZSHDIR" "$root$PREFIX/share/fish/vendor_completions.d" "$root$UNITDIR" "$root$UDEVRULESDIR" \
	"$root$SYSUSERSDIR" "$root$SYSCONFDIR/vhsm" "$root$SYSCONFDIR/logrotate.d"
install -m 0755 "$bindir/vhsm" "$bindir/vhsmd" "$root$PREFIX/bin/"

for page in "$pages"/*.1; do
	install -m 0644 "$page" "$root$PREFIX/share/man/man1/"
	if [ "$COMPRESS_MAN" = 1 ]; then gzip -9nf "$root$PREFIX/share/man/man1/$(basename "$page")"; fi
done

# Completions from swift-argument-parser's generator, asked of the installed binaries.
for tool in vhsm vhsmd; do
	"$bindir/$tool" --generate-completion-script bash | sed '1{/^#!/d}' >"$root$PREFIX/share/bash-completion/completions/$tool"
	"$bindir/$tool" --generate-completion-script zsh >"$root$ZSHDIR/_$tool"
	"$bindir/$tool" --generate-completion-script fish >"$root$PREFIX/share/fish/vendor_completions.d/$tool.fish"
done
chmod 0644 "$root$PREFIX/share/bash-completion/completions/"vhsm* "$root$ZSHDIR/"_vhsm* \
	"$root$PREFIX/share/fish/vendor_completions.d/"vhsm*

# The unit names the installed paths.
sed -e "s|/usr/bin/vhsmd|$PREFIX/bin/vhsmd|" -e "s|/etc/vhsm/|$SYSCONFDIR/vhsm/|" \
	"$here/packaging/vhsmd.service" >"$root$UNITDIR/vhsmd.service"
chmod 0644 "$root$UNITDIR/vhsmd.service"
install -m 0644 "$here/packaging/60-vhsm-sev-guest.rules" "$root$UDEVRULESDIR/"
install -m 0644 "$here/packaging/vhsm.sysusers" "$root$SYSUSERSDIR/vhsm.conf"
install -m 0644 "$here/packaging/vhsmd.logrotate" "$root$SYSCONFDIR/logrotate.d/vhsmd"
if [ -e "$root$SYSCONFDIR/vhsm/vhsmd.json" ] && ! cmp -s "$here/packaging/vhsmd.json" "$root$SYSCONFDIR/vhsm/vhsmd.json"; then
	install -m 0644 "$here/packaging/vhsmd.json" "$root$SYSCONFDIR/vhsm/vhsmd.json.dist"
	echo "install: kept $root$SYSCONFDIR/vhsm/vhsmd.json; the shipped one is beside it as vhsmd.json.dist"
else
	install -m 0644 "$here/packaging/vhsmd.json" "$root$SYSCONFDIR/vhsm/vhsmd.json"
fi
echo "install: vhsm and vhsmd in $root$PREFIX/bin, $(ls "$pages"/*.1 | wc -l) man pages, completions for bash, zsh and fish,"
echo "  the unit $root$UNITDIR/vhsmd.service and the configuration $root$SYSCONFDIR/vhsm/vhsmd.json"
