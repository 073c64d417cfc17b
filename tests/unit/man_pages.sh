#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# The man pages of docs/man, as the README tells users to read them
# (`man -l docs/man/PAGE`):
#  - every page, aliases included, renders without warnings from any
#    directory: the source root, the man directory, / (an alias is a
#    symbolic link to its page; a ".so" page would resolve against the
#    current directory and fail elsewhere);
#  - each tool has a section 1 page that documents every option its
#    --help lists, and sgc-bpfstat(1) every counter the library names.
#   man_pages.sh SRC_DIR SGC_BPFSTAT SGC_FAULTINJ
set -uo pipefail
SRC=$1
BPFSTAT=$2
FAULTINJ=$3
MAN=$SRC/docs/man
CLUSTER=$SRC/tools/sgc-cluster
errors=0

bad() {
	echo "FAIL: $*" >&2
	errors=$((errors + 1))
}

if ! command -v man >/dev/null; then
	echo "SKIP: no man(1) here: install man-db (tools/install-deps.sh does)" >&2
	exit 77
fi

# render DIR PAGE: `man -l PAGE` run in DIR gives a page with a NAME
# section and no warning.
render() {
	local dir=$1 page=$2 out err

	err=$( (cd "$dir" && MANWIDTH=80 man --warnings -l "$page" >"$TMP/out") 2>&1) ||
		{ bad "man -l $page (in $dir) failed: $err"; return; }
	[ -z "$err" ] || { bad "man -l $page (in $dir) warns: $err"; return; }
	out=$(cat "$TMP/out")
	grep -q '^NAME' <<<"$out" || bad "man -l $page (in $dir) has no NAME section"
}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
n=0
aliases=0
for page in "$MAN"/*.[1-8]; do
	name=${page##*/}
	n=$((n + 1))
	if grep -q '^\.so ' "$page"; then
		bad "$name is a .so page, which man -l resolves against the current directory:" \
			"make it a symbolic link to its target (ln -sf TARGET $name)"
		continue
	fi
	if [ -L "$page" ]; then
		aliases=$((aliases + 1))
		target=$(readlink "$page")
		case "$target" in
		*/*) bad "$name links to $target: link to a page in the same directory" ;;
		esac
		[ -f "$MAN/$target" ] || bad "$name links to a missing page $target"
	fi
	render / "$page"
	render "$SRC" "docs/man/$name"
	render "$MAN" "$name"
done
[ "$n" -ge 30 ] || bad "only $n pages in $MAN"
[ "$aliases" -ge 1 ] || bad "no alias pages in $MAN: the test looks in the wrong place"
echo "man_pages: $n pages ($aliases aliases) render from /, the source root and docs/man"

# Tools: a page each, covering what --help lists.
for tool in sgc-cluster sgc-bpfstat sgc-faultinj; do
	[ -f "$MAN/$tool.1" ] || bad "no man page docs/man/$tool.1"
done
# documents PAGE WORD...: each WORD has an entry in PAGE: it is a word of
# the tag line of a .TP paragraph, as groff spells it (--dev is \-\-dev).
documents() {
	local page=$1 w
	shift
	for w in "$@"; do
		T=${w//-/\\-} awk 'tag { l = " " $0 " "; gsub(/[",]/, " ", l)
			if (index(l, " " ENVIRON["T"] " ")) found = 1 }
			{ tag = /^\.TP/ }
			END { exit !found }' "$MAN/$page" || bad "$page has no entry for $w"
	done
}
[ -x "$BPFSTAT" ] || bad "no sgc-bpfstat at $BPFSTAT"
counters=$("$BPFSTAT" --help | sed -n '/^Counters/,$p' | tail -n +2)
[ "$(wc -w <<<"$counters")" -ge 20 ] || bad "sgc-bpfstat --help lists only: $counters"
# shellcheck disable=SC2086 # one word per counter
documents sgc-bpfstat.1 $counters
"$BPFSTAT" --help | grep -q -- '^usage: sgc-bpfstat IFNAME \[-p PORT\] \[-w SECONDS\]$' ||
	bad "sgc-bpfstat --help has other options than -p and -w: update sgc-bpfstat.1 and this test"
documents sgc-bpfstat.1 -p --port -w --watch -h --help
[ -x "$FAULTINJ" ] || bad "no sgc-faultinj at $FAULTINJ"
opts=$("$FAULTINJ" --help | grep -o -- '--[a-z][a-z-]*' | sort -u)
[ "$(wc -w <<<"$opts")" -ge 10 ] || bad "sgc-faultinj --help lists only: $opts"
# shellcheck disable=SC2086
documents sgc-faultinj.1 $opts --help
# (its counters line is printed only on exit: the names from its source)
counters_fi=$(grep -o '[a-z_]*=%llu' "$SRC/tools/sgc-faultinj.c" | sed 's/=.*//')
[ "$(wc -w <<<"$counters_fi")" -ge 5 ] || bad "sgc-faultinj.c prints only: $counters_fi"
# shellcheck disable=SC2086
documents sgc-faultinj.1 $counters_fi
opts=$(bash "$CLUSTER" help | grep -v sgc-faultinj | grep -o -- '--[a-z][a-z-]*' | sort -u)
[ "$(wc -w <<<"$opts")" -ge 10 ] || bad "sgc-cluster help lists only: $opts"
# shellcheck disable=SC2086
documents sgc-cluster.1 $opts up down run session exec list SGC_CLUSTER_STATE_DIR
echo "man_pages: the tools' pages cover their options ($(wc -w <<<"$counters") sgc-bpfstat counters)"

[ "$errors" = 0 ] || { echo "man_pages: $errors failures" >&2; exit 1; }
