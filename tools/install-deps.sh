#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# install-deps.sh - install the Debian packages needed to build and test
# libsgcoll.  Idempotent: installs only what `dpkg -s` reports missing and
# prints one line saying what it did.
#
# To add a dependency, append it to SGC_DEPS below (one package per line,
# an optional comment after it says why).
set -euo pipefail

SGC_DEPS=(
	cmake		# build system
	pkg-config	# finds libbpf, liburing, cmocka
	clang		# compiles the BPF programs
	llvm		# llvm-strip, llvm-objdump for BPF objects
	libbpf-dev
	liburing-dev
	libcmocka-dev	# unit tests
	libelf-dev	# libbpf's dependency
	zlib1g-dev	# libbpf's dependency
	bpftool		# gen skeleton, inspecting links in tests
	iproute2	# ip netns, veth, bridge: the virtual cluster
	iputils-ping	# connectivity check in tests/e2e/cluster_selftest.sh
	gcc
	make
	g++		# bench/gloo_allreduce.cc
	openmpi-bin	# bench: mpirun for the Open MPI peer
	libopenmpi-dev	# bench: mpicc, MPI_Allreduce
	libgloo-dev	# bench: the Gloo allreduce peer (tcp transport)
	gnuplot-nox	# bench: PNG plots of bench/results
	python3-numpy	# bindings/python and its tests
	python3-pytest	# tests/python
	libclang-rt-14-dev	# make fuzz: libFuzzer runtime for clang-14
	valgrind	# make valgrind (and its memcheck.h client requests)
	python3-torch	# examples/train_torch.py and its test
	man-db		# tests: the man pages render with man -l (tests/unit/man_pages.sh)
)

missing=()
for pkg in "${SGC_DEPS[@]}"; do
	# `dpkg -s` also succeeds for removed-but-not-purged packages: require
	# the "install ok installed" status.
	if ! dpkg -s "$pkg" 2>/dev/null | grep -qx 'Status: install ok installed'; then
		missing+=("$pkg")
	fi
done

if ((${#missing[@]} == 0)); then
	echo "install-deps: all build dependencies present"
	exit 0
fi

if ((EUID != 0)); then
	echo "install-deps: missing packages: ${missing[*]}; run as root" \
	     "(e.g. sudo $0) to install them" >&2
	exit 1
fi

# Quiet apt, but show its output if it fails.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! apt-get update >"$log" 2>&1 ||
   ! DEBIAN_FRONTEND=noninteractive apt-get install -y \
	"${missing[@]}" >>"$log" 2>&1; then
	cat "$log" >&2
	echo "install-deps: failed to install: ${missing[*]}" >&2
	exit 1
fi
echo "install-deps: installed ${missing[*]}"
