#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# e2e: `cmake --install` into a temporary prefix, then a program outside
# the repository, built only with `pkg-config --cflags --libs sgcoll` and
# the rpath the README gives, runs every collective across namespaces with
# SGC_ACCEL=off.  The installed programs carry a RUNPATH to the installed
# library and start without LD_LIBRARY_PATH.  The man pages must cover
# every function of the installed header and every installed program, and
# render without warnings; the installed Python package must import and
# run without SGCOLL_LIB, loading the installed library.
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
# Nothing below may find the library through the environment.
unset LD_LIBRARY_PATH
libdir=$(pkg-config --variable=libdir sgcoll) || fail "pkg-config finds no sgcoll in $prefix"

# uses_installed_lib PROGRAM: the loader resolves PROGRAM's libsgcoll to
# the one in $prefix (not a copy in /usr/local, not none).
uses_installed_lib() {
	local got

	got=$(ldd "$1" | awk '$1 == "libsgcoll.so.0" { print $3 }')
	if [ -z "$got" ] || [ "$got" = "not" ]; then
		fail "$1 does not find libsgcoll.so.0: $(ldd "$1" | grep sgcoll)"
	fi
	[ "$(realpath "$got")" = "$(realpath "$libdir/libsgcoll.so.0")" ] ||
		fail "$1 loads $got, not the installed $libdir/libsgcoll.so.0"
}

# The installed programs: a RUNPATH relative to themselves, so that they
# start from this prefix (and from a copy of it elsewhere).
for tool in sgc-bpfstat sgc-faultinj; do
	bin=$prefix/bin/$tool
	[ -x "$bin" ] || fail "$tool is not installed in $prefix/bin"
	rp=$(readelf -d "$bin" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p')
	case "$rp" in
	'$ORIGIN/'*) ;;
	*) fail "$bin has RUNPATH \"$rp\", not one relative to \$ORIGIN" ;;
	esac
	out=$("$bin" --help 2>&1) || fail "the installed $tool --help failed: $out"
	echo "$out" | grep -q "^usage: $tool" || fail "the installed $tool --help printed: $out"
done
uses_installed_lib "$prefix/bin/sgc-bpfstat"
moved=$LOGDIR/moved
cp -a "$prefix" "$moved"
out=$("$moved/bin/sgc-bpfstat" --help 2>&1) || fail "sgc-bpfstat from a moved prefix failed: $out"
echo "ok: installed programs start without LD_LIBRARY_PATH (RUNPATH $rp), from a moved prefix too"

# Man pages: one for every SGC_API function (a page or a symbolic link to
# one), one for every installed program; each renders with man -l from
# here, outside the man directory.
man3=$prefix/share/man/man3
for tool in sgc-bpfstat sgc-faultinj sgc-cluster; do
	[ -f "$prefix/share/man/man1/$tool.1" ] || fail "no man page $tool(1) in $prefix/share/man/man1"
done
[ -f "$prefix/share/man/man7/sgcoll.7" ] || fail "sgcoll(7) is not installed"
fns=$(grep -o '^SGC_API [^(]*(' "$prefix/include/sgcoll.h" | grep -o '[a-z_0-9]*($' | tr -d '(')
[ "$(echo "$fns" | wc -w)" -ge 30 ] || fail "found only $(echo "$fns" | wc -w) functions in sgcoll.h"
for fn in $fns; do
	page=$man3/$fn.3
	[ -f "$page" ] || fail "no man page for $fn ($page)"
	if [ -L "$page" ]; then
		target=$(readlink "$page")
		[ -f "$man3/$target" ] || fail "$page links to a missing page $target"
		page=$man3/$target
	fi
	grep -qw "$fn" "$page" || fail "$page does not mention $fn"
done
if command -v man >/dev/null; then
	for page in "$prefix"/share/man/man1/*.1 "$man3"/*.3 "$prefix"/share/man/man7/*.7; do
		warn=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
		[ -z "$warn" ] || fail "$page renders with warnings: $warn"
	done
fi
echo "ok: man pages for all $(echo "$fns" | wc -w) functions of sgcoll.h"

# The Python package, found through PYTHONPATH alone, loads the installed
# library (no SGCOLL_LIB, no LD_LIBRARY_PATH) and runs a one-rank job.
pyinit=$(find "$prefix" -path '*/dist-packages/sgcoll/__init__.py' | head -1)
[ -n "$pyinit" ] || fail "the sgcoll Python package is not installed under $prefix"
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
	pyout=$(cd "$LOGDIR" && env -u SGCOLL_LIB -u LD_LIBRARY_PATH PYTHONDONTWRITEBYTECODE=1 \
		PYTHONPATH="$(dirname "$(dirname "$pyinit")")" /usr/bin/python3 -c '
import os, sys, numpy as np, sgcoll
c = sgcoll.Comm(rank=0, world_size=1, coordinator="127.0.0.1:%s" % sys.argv[1], accel=sgcoll.ACCEL_OFF)
assert list(c.allreduce(np.arange(3, dtype=np.int32))) == [0, 1, 2]
assert list(c.allreduce_float(np.array([0.5, -1.25], np.float32), max_abs=2.0)) == [0.5, -1.25]
c.close()
assert sgcoll.__version__ == sys.argv[2], (sgcoll.__version__, sys.argv[2])
print(os.path.realpath(sgcoll.__file__), os.path.realpath(sgcoll._lib._name))
' $((20000 + $$ % 20000)) "$(pkg-config --modversion sgcoll)" 2>&1) ||
		fail "the installed Python package failed: $pyout"
	case "$pyout" in
	"$(realpath "$prefix")"/*" $(realpath "$prefix")"/*) ;;
	*) fail "the Python package or its library is not the installed one: $pyout" ;;
	esac
	[ -f "$(dirname "$pyinit")/torch.py" ] || fail "sgcoll/torch.py (the DDP hook) is not installed"
	echo "ok: installed Python package: $pyout"
else
	echo "note: python3-numpy missing, the installed Python package was not run"
fi
# A custom reduction builds against the installed <sgcoll/agg.bpf.h> (and
# the <sgcoll/abi.h> and <sgcoll/wire.h> it includes) and nothing else.
bpfcc=$(command -v clang || command -v clang-14 || true)
if [ -n "$bpfcc" ]; then
	"$bpfcc" -g -O2 -target bpf -Wall -Werror -I"$prefix/include" \
		-I"/usr/include/$(uname -m)-linux-gnu" -c \
		"$(dirname "$0")/../../libsgcoll/bpf/examples/agg_saturating_sum.bpf.c" \
		-o "$LOGDIR/agg.bpf.o" >"$LOGDIR/agg.log" 2>&1 ||
		fail "a custom reduction does not build against the installed headers: $(head -5 "$LOGDIR/agg.log")"
	echo "ok: a custom reduction builds against the installed <sgcoll/agg.bpf.h>"
else
	echo "note: no clang, the installed <sgcoll/agg.bpf.h> was not compiled"
fi
mkdir "$LOGDIR/app"
# The program with its own test header (check.h: FAIL(), a clock), which is
# not part of the library: only libsgcoll's headers come from the prefix.
cp "$SRC" "$LOGDIR/app/app.c"
cp "$(dirname "$SRC")/check.h" "$LOGDIR/app/"
# shellcheck disable=SC2046 # pkg-config prints several words on purpose
# shellcheck disable=SC2086 # EXTRA_CFLAGS: a sanitized build's flags
# (-lm: the test program itself uses libm; libsgcoll's own needs come from pkg-config)
cc -O2 $EXTRA_CFLAGS -o "$LOGDIR/app/app" "$LOGDIR/app/app.c" $(pkg-config --cflags --libs sgcoll) \
	-Wl,-rpath,"$(pkg-config --variable=libdir sgcoll)" -lm ||
	fail "building an outside program with pkg-config failed"
echo "ok: built with: cc app.c $(pkg-config --cflags --libs sgcoll) -Wl,-rpath,$libdir"
uses_installed_lib "$LOGDIR/app/app"
# It runs as it is, here (one rank) before across namespaces below.
out=$(SGC_RANK=0 SGC_WORLD_SIZE=1 SGC_COORDINATOR=127.0.0.1:$((20000 + ($$ + 7) % 20000)) \
	SGC_ACCEL=off "$LOGDIR/app/app" -s allreduce -c 1,363 -b 1 2>&1) ||
	fail "the pkg-config-built program does not run: $out"
# The same program from an outside CMake project with find_package(sgcoll).
mkdir "$LOGDIR/cmk"
cp "$SRC" "$LOGDIR/cmk/app.c"
cp "$(dirname "$SRC")/check.h" "$LOGDIR/cmk/"
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
# libsgcoll-mpi, where the build has it: <sgcoll/mpi.h>, sgcoll-mpi.pc and
# sgc_init_mpi(3) are installed, and a program built with mpicc and
# pkg-config alone runs under mpirun with no coordinator address given.
if [ -f "$BUILD/libsgcoll-mpi/sgcoll-mpi.pc" ]; then
	[ -f "$prefix/include/sgcoll/mpi.h" ] || fail "<sgcoll/mpi.h> is not installed"
	[ -f "$man3/sgc_init_mpi.3" ] || fail "no man page sgc_init_mpi(3) in $man3"
	mpiflags=$(pkg-config --cflags --libs sgcoll-mpi) ||
		fail "pkg-config finds no sgcoll-mpi in $prefix"
	# shellcheck disable=SC2086 # flags: several words on purpose
	mpicc -O2 $EXTRA_CFLAGS -o "$LOGDIR/app/mpiapp" "$(dirname "$0")/mpi_init_check.c" \
		$mpiflags -Wl,-rpath,"$libdir" >"$LOGDIR/mpicc.log" 2>&1 ||
		fail "mpicc with pkg-config sgcoll-mpi failed: $(tail -5 "$LOGDIR/mpicc.log")"
	out=$(env -u SGC_COORDINATOR -u SGC_COORDINATOR_FILE -u SGC_PORT timeout 120 \
		"${MPIRUN[@]}" -np 3 -x SGC_ACCEL=off "$LOGDIR/app/mpiapp" 2>&1) ||
		fail "the installed libsgcoll-mpi under mpirun failed: $out"
	grep -q "3 ranks, allreduce exact" <<<"$out" || fail "no exact allreduce: $out"
	echo "ok: built with: mpicc app.c $mpiflags; ran under mpirun"
else
	echo "note: no libsgcoll-mpi in this build (no MPI at configure time)"
fi
need_root
"$CLUSTER" session --hosts 3 --ranks 6 --accel off --timeout-ms 20000 --deadline 240 -- \
	"$LOGDIR/app/app" -c 0,1,363,100000 -b 1 || fail "the outside program failed"
"$CLUSTER" session --hosts 2 --ranks 3 --accel off --timeout-ms 20000 --deadline 120 -- \
	"$LOGDIR/cmk/build/app" -c 1,363 -b 1 || fail "the CMake-built outside program failed"
echo "ok: outside programs ran every collective across namespaces"
