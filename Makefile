# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Thin wrapper around CMake.  `make demo` and `make test` install what is
# missing (Debian packages), configure, build and run.
BUILD ?= build
PREFIX ?= /usr/local
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build test demo bench sanitize install clean

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

# The benchmark set of bench/README.md (long: it prints its estimate).
bench: build
	/usr/bin/python3 bench/run.py --build $(abspath $(BUILD))

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(BUILD)-san
