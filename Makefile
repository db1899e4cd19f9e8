# Thin wrapper around `zig build`; test targets use the system compiler for
# ASan+UBSan (zig cc has no ASan).
ZIG      := scripts/zig
CC       ?= cc
BIN      := zig-out/bin/shardid
SRC      := $(wildcard src/*.c) $(wildcard src/*.h) build.zig
LIB_SRC  := $(filter-out src/main.c,$(wildcard src/*.c))
UNIT     := $(patsubst tests/unit/%.c,build/unit/%,$(wildcard tests/unit/test_*.c))
UNIT_H   := $(wildcard tests/unit/*.h)
# Sanitizer flags: scripts/sanitize-flags decides them for the fuzz scripts too.
SAN      := $(shell scripts/sanitize-flags)
ifeq ($(SAN),)
$(error scripts/sanitize-flags printed no flags)
endif
CFLAGS_T := -std=c11 -D_GNU_SOURCE -DSHARDID_VERSION='"test"' -DSHARDID_TEST_HOOKS=1 \
            -Wall -Wextra -g -O1 -Isrc $(SAN)

.PHONY: all run test unit asan blackbox bench fuzz fuzz-replay release clean
all: $(BIN)

# zig installs a cached binary with its old time stamp: touch it, or make
# would run zig again on every call after a change that left the binary alone.
$(BIN): $(SRC)
	$(ZIG) build
	@touch $@

run: $(BIN)
	$(BIN)

# Test build of the server: test hooks compiled in, sanitizers on.
build/shardid-asan: $(SRC) scripts/sanitize-flags
	@mkdir -p build
	$(CC) $(CFLAGS_T) -o $@ $(wildcard src/*.c)

build/unit/%: tests/unit/%.c $(UNIT_H) $(LIB_SRC) $(wildcard src/*.h) scripts/sanitize-flags
	@mkdir -p build/unit
	$(CC) $(CFLAGS_T) -Itests/unit -o $@ $< $(LIB_SRC)

# The loop test runs again against the portable poll(2) backend.
build/unit/test_loop_poll: tests/unit/test_loop.c $(UNIT_H) $(LIB_SRC) $(wildcard src/*.h) scripts/sanitize-flags
	@mkdir -p build/unit
	$(CC) $(CFLAGS_T) -DSHARDID_LOOP_POLL -Itests/unit -o $@ $< $(LIB_SRC)

unit: $(UNIT) build/unit/test_loop_poll
	@scripts/run-unit-tests $(UNIT) build/unit/test_loop_poll

asan: unit build/shardid-asan

blackbox: $(BIN) build/shardid-asan
	@scripts/test-deps
	python3 -m pytest -q tests/blackbox

fuzz-replay:
	@scripts/fuzz-replay

fuzz:
	scripts/fuzz $(FUZZ_SECONDS)

# Every suite runs even when an earlier one fails, so each prints its summary.
test:
	@rc=0; $(MAKE) --no-print-directory unit || rc=1; \
	$(MAKE) --no-print-directory fuzz-replay || rc=1; \
	$(MAKE) --no-print-directory blackbox || rc=1; exit $$rc

FUZZ_SECONDS ?= 60

# The benchmark installs nothing itself: bench-deps adds its tools when missing.
bench: $(BIN)
	@scripts/bench-deps
	scripts/bench

# dist/shardid-v$(cat VERSION)/: both binaries, their test results, SHA256SUMS
# (scripts/release says what it checks). Fails unless every check passed.
release:
	@scripts/release-deps
	scripts/release

clean:
	rm -rf zig-out .zig-cache build dist
