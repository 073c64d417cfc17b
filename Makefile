# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Thin wrapper around CMake.  `make demo` and `make test` install what is
# missing (Debian packages), configure, build and run.
BUILD ?= build
PREFIX ?= /usr/local
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build test demo bench bench-loss bench-inflight sanitize fuzz valgrind \
	install clean \
	faults soak

all: build

deps:
	@bash tools/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS)

configure: $(BUILD)/CMakeCache.txt

build: deps configure
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure --timeout 1200

demo: build
	bash tools/sgc-demo.sh $(abspath $(BUILD))

# The library and every test under AddressSanitizer + UBSan (leaks too).
sanitize: deps
	cmake -S . -B $(BUILD)-san -DSGC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS)
	cmake --build $(BUILD)-san -j $(JOBS)
	cd $(BUILD)-san && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure --timeout 1200

# Every fuzzer for a bounded time (fuzz/README.md): the libFuzzer targets
# FUZZ_SECONDS each (clang build in $(BUILD)-fuzz), then fuzz_bpf on
# FUZZ_BPF_PACKETS generated frames (root).
FUZZ_SECONDS ?= 60
FUZZ_BPF_PACKETS ?= 1000000
fuzz: build
	cmake -S . -B $(BUILD)-fuzz -DCMAKE_C_COMPILER=clang-14 -DSGC_FUZZ=ON \
		-DSGC_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)
	cmake --build $(BUILD)-fuzz -j $(JOBS) --target fuzz_wire fuzz_rx fuzz_config fuzz_make_seeds \
		fuzz_bpf fuzz_bpf_lf
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_BPF_PACKETS=$(FUZZ_BPF_PACKETS) \
		bash fuzz/run.sh $(BUILD)-fuzz $(BUILD)

# valgrind memcheck: the unit tests and e2e collective runs, every rank
# under valgrind (fuzz/valgrind.sh says what is covered and what is not).
valgrind: build
	bash fuzz/valgrind.sh $(abspath $(BUILD))

# The benchmark set of bench/README.md: runs of about 2 s, 3 repeats, about
# 70 minutes on 2 cores (it prints its estimate and its progress).
BENCH_ARGS ?= --target-s 2
bench: build
	/usr/bin/python3 bench/run.py --build $(abspath $(BUILD)) $(BENCH_ARGS)

# Allreduce under injected packet loss (issue 17's targets): both paths and
# Open MPI tcp, 17 and 65 ranks, 363 x int32 and 64 KiB, loss 0 to 10%, in
# about 25 minutes; writes bench/results/loss/.  LOSS_ARGS adds options,
# e.g. LOSS_ARGS='--repeats 3' or LOSS_ARGS='--topology per-host'.
LOSS_ARGS ?=
bench-loss: build
	/usr/bin/python3 bench/loss.py --build $(abspath $(BUILD)) $(LOSS_ARGS)

# 64 allreduces in flight without loss: what each path resends (issue 17:
# at most 1% of the datagrams sent), 33 ranks, 3 repeats, about 3 minutes;
# writes bench/results/inflight/.  INFLIGHT_ARGS adds options.
INFLIGHT_ARGS ?=
bench-inflight: build
	/usr/bin/python3 bench/inflight.py --build $(abspath $(BUILD)) $(INFLIGHT_ARGS)

# Collectives under injected faults, both paths, 10,000 per setting at 33
# ranks (long: tens of minutes); writes bench/results/faults.{csv,md}.
# FAULTS_ARGS adds options, e.g. FAULTS_ARGS='--colls 1000 --paths off'.
FAULTS_ARGS ?=
faults: build
	bash tests/e2e/fault_matrix.sh tools/sgc-cluster $(abspath $(BUILD))/tools/sgc-faultinj \
		$(abspath $(BUILD))/tests/e2e/coll_check --out bench/results/faults $(FAULTS_ARGS)

# Mixed collectives under faults, both paths, for SOAK_SECONDS (default 600).
SOAK_SECONDS ?= 600
soak: build
	bash bench/soak.sh tools/sgc-cluster $(abspath $(BUILD))/tools/sgc-faultinj \
		$(abspath $(BUILD))/tests/e2e/coll_check --seconds $(SOAK_SECONDS) --out bench/results/soak

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(BUILD)-san $(BUILD)-fuzz
