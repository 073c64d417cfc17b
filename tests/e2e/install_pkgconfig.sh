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
# The same program from an outside CMake project with find_package(sgcoll).
mkdir "$LOGDIR/cmk"
cp "$SRC" "$LOGDIR/cmk/app.c"
cat >"$LOGDIR/cmk/CMakeLists.txt" <<'CMK'
cmake_minimum_required(VERSION 3.20)
project(outside C)
find_package(sgcoll 0.1 REQUIRED)
add_executable(app app.c)
target_link_libraries(app PRIVATE sgcoll::sgcoll m)
CMK
# shellcheck disable=SC2086 # EXTRA_CFLAGS: a sanitized build's flags
cmake -S "$LOGDIR/cmk" -B "$LOGDIR/cmk/build" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_C_FLAGS="$EXTRA_CFLAGS" -DCMAKE_EXE_LINKER_FLAGS="$EXTRA_CFLAGS" \
	-DCMAKE_BUILD_RPATH="$(pkg-config --variable=libdir sgcoll)" >"$LOGDIR/cmk.log" 2>&1 &&
	cmake --build "$LOGDIR/cmk/build" >>"$LOGDIR/cmk.log" 2>&1 ||
	fail "building an outside program with CMake find_package(sgcoll) failed: $(tail -5 "$LOGDIR/cmk.log")"
echo "ok: built with CMake find_package(sgcoll)"
need_root
"$CLUSTER" session --hosts 3 --ranks 6 --accel off --timeout-ms 20000 --deadline 240 -- \
	"$LOGDIR/app/app" -c 0,1,363,100000 -b 1 || fail "the outside program failed"
"$CLUSTER" session --hosts 2 --ranks 3 --accel off --timeout-ms 20000 --deadline 120 -- \
	"$LOGDIR/cmk/build/app" -c 1,363 -b 1 || fail "the CMake-built outside program failed"
echo "ok: outside programs ran every collective across namespaces"
