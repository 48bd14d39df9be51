#!/bin/sh
# Man pages for vhsm and vhsmd from swift-argument-parser's own generator (generate-manual, the tool behind its
# `swift package plugin generate-manual`), one page per subcommand (--multi-page), named as git names its pages:
# vhsm-report-verify.1 for 'vhsm report verify'. The plugin itself cannot be used as is: it runs every executable
# of the package, and vhsm-guest (the initramfs's multi-call binary) is none of the commands it documents.
#
# usage: scripts/manpages.sh GENERATE_MANUAL BINDIR OUTDIR
# The pages' date is the last commit's (SOURCE_DATE_EPOCH if set), so a rebuild of the same commit is identical.
set -eu
generator=$1 bindir=$2 out=$3
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
day=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
for tool in vhsm vhsmd; do
	mkdir "$work/$tool"
	"$generator" "$bindir/$tool" --multi-page --date "$day" --authors "the vhsm developers" -o "$work/$tool"
done
# vhsm.report.verify.1 -> vhsm-report-verify.1, in file names, .Dt and .Xr; the 'help' subcommand has no page.
# NAME holds the page's name and an unquoted description (whatis reads it), the synopsis the command as typed. An empty line in a discussion
# becomes a paragraph break (.Pp), and a text line that starts with ' (a quoted command) is escaped so roff does
# not read it as a request.
count=0
for page in "$work"/*/*.1; do
	name=$(basename "$page" .1)
	case $name in *.help) continue ;; esac
	dashed=$(printf %s "$name" | tr . -)
	awk '
		# NAME names the page (vhsm-report-verify, as whatis and apropos read it); the synopsis and the text keep
		# the command as typed.
		/^\.Nm "/ && !named { named = 1; command = substr($0, 5); n = split(command, words, " "); print ".Nm " (n > 1 ? "'"$dashed"'" : command); next }
		/^\.Nm$/ && named { print ".Nm " command; next }
		/^\.Nd "/ && /"$/ { print ".Nd " substr($0, 6, length($0) - 6); next }
		/^\.(Dt|Xr) / { n = split($2, parts, "."); name = parts[1]; for (i = 2; i <= n; i++) name = name "-" parts[i]; $2 = name; print; next }
		# The description keeps the line breaks of --help: a text line after a text line starts a new line.
		/^\.Sh DESCRIPTION/ { description = 1; text = 0; print; next }
		/^\./ { if ($0 !~ /^\.Pp/) description = 0; text = 0 }
		/^$/ { print ".Pp"; text = 0; next }
		description && !/^\./ { if (text) print ".br"; text = 1 }
		/^'\''/ { print "\\&" $0; next }
		{ print }
	' "$page" >"$out/$dashed.1"
	count=$((count + 1))
done
echo "manpages: $count pages in $out"
