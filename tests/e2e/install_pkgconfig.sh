#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# e2e: `cmake --install` into a temporary prefix, then a program outside
# the repository, built only with `pkg-config --cflags --libs sgcoll`,
# runs every collective across namespaces with SGC_ACCEL=off.
#   install_pkgconfig.sh CLUSTER BUILD_DIR PROGRAM.c [EXTRA_CFLAGS]
set -uo pipefail
CLUSTER=$1
BUILD=$2
SRC=$3
EXTRA_CFLAGS=${4:-}
. "$(dirname "$0")/lib.sh"

LOGDIR=$(mktemp -d)
prefix=$LOGDIR/prefix
cmake --install "$BUILD" --prefix "$prefix" >"$LOGDIR/install.log" 2>&1 ||
	fail "cmake --install failed: $(tail -5 "$LOGDIR/install.log")"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig
mkdir "$LOGDIR/app"
cp "$SRC" "$LOGDIR/app/app.c"
# shellcheck disable=SC2046 # pkg-config prints several words on purpose
# shellcheck disable=SC2086 # EXTRA_CFLAGS: a sanitized build's flags
# (-lm: the test program itself uses libm; libsgcoll's own needs come from pkg-config)
cc -O2 $EXTRA_CFLAGS -o "$LOGDIR/app/app" "$LOGDIR/app/app.c" $(pkg-config --cflags --libs sgcoll) \
	-Wl,-rpath,"$(pkg-config --variable=libdir sgcoll)" -lm ||
	fail "building an outside program with pkg-config failed"
echo "ok: built with: cc app.c $(pkg-config --cflags --libs sgcoll)"
need_root
"$CLUSTER" session --hosts 3 --ranks 6 --accel off --timeout-ms 20000 --deadline 240 -- \
	"$LOGDIR/app/app" -c 0,1,363,100000 -b 1 || fail "the outside program failed"
echo "ok: outside program ran every collective across namespaces"
