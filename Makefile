# hark — build, run, test.
#
#   make run      install missing Debian packages, build, start on 127.0.0.1:6001
#   make test     install what tests need, build, run unit + end-to-end tests,
#                 then the same suite under ASan+UBSan, then a short fuzz run
#   make          build build/hark
#   make fuzz     build libFuzzer targets into build/fuzz/ (FUZZ_SECONDS=N to run each)
#   make bench    run the benchmark set (see bench/README.md)
#   make soak     the 30-minute churn soak (bench/soak.sh), RSS sampled

CC      ?= cc
BUILD   ?= build
PKGS    := libuv jansson libcrypto libcurl sqlite3
# CFLAGS is the part a caller may replace (make asan does); BASE_CFLAGS always applies.
CFLAGS  ?= -O2 -g
BASE_CFLAGS := -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
           -fno-strict-aliasing -Isrc $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -luv -ljansson -lcrypto -lcurl -lsqlite3) -lpthread -lm

SRCS     := $(sort $(shell find src -name '*.c' ! -path src/main.c))
OBJS     := $(SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# --test-concurrency exists from Node 20.10 (Debian 12's own nodejs is 18).
NODE_TEST := node --test $(shell node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.stdout.write(a>20||(a===20&&b>=10)?"--test-concurrency=2":"")' 2>/dev/null)
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=build/fuzz/%)

.PHONY: all run test deps test-deps unit e2e e2e-workers asan fuzz fuzz-run bench soak clean format lint

all: $(BUILD)/hark

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(BASE_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libhark.a: $(OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/hark: $(BUILD)/obj/src/main.o $(BUILD)/libhark.a
	$(CC) $(CFLAGS) $(BASE_CFLAGS) $^ -o $@ $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libhark.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(BASE_CFLAGS) $< $(BUILD)/libhark.a -o $@ $(LDFLAGS) $(LDLIBS) -lcmocka

-include $(OBJS:.o=.d) $(BUILD)/obj/src/main.d

# ---- packages -------------------------------------------------------------
deps:
	@scripts/install-deps.sh run

test-deps:
	@scripts/install-deps.sh test

run: deps all
	$(BUILD)/hark $(ARGS)

# ---- tests ----------------------------------------------------------------
unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

tests/e2e/node_modules: tests/e2e/package.json tests/e2e/package-lock.json
	cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

e2e: $(BUILD)/hark tests/e2e/node_modules
	cd tests/e2e && HARK_BIN=$(abspath $(BUILD)/hark) $(NODE_TEST) *.test.mjs

# The end-to-end suite with one worker and with two (shared directory, cross-worker fan-out).
e2e-workers: $(BUILD)/hark tests/e2e/node_modules
	cd tests/e2e && HARK_TEST_WORKERS=1 HARK_BIN=$(abspath $(BUILD)/hark) $(NODE_TEST) *.test.mjs
	cd tests/e2e && HARK_TEST_WORKERS=2 HARK_BIN=$(abspath $(BUILD)/hark) $(NODE_TEST) *.test.mjs

# The whole suite again, built with AddressSanitizer + UndefinedBehaviorSanitizer.
asan:
	$(MAKE) BUILD=build/asan CC=clang \
	    CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
	    LDFLAGS="-fsanitize=address,undefined" unit e2e

test: test-deps
	scripts/check-layers.sh
	$(MAKE) all unit e2e-workers
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    HARK_SOAK_SECONDS=$${HARK_SOAK_SECONDS:-60} $(MAKE) asan
	$(MAKE) fuzz-run FUZZ_SECONDS=$${FUZZ_SECONDS:-10}

# ---- fuzzing (libFuzzer, clang) -------------------------------------------
# The sources are compiled once with the fuzzing instrumentation into
# build/fuzz/libhark.a; each target links against it.
FUZZ_BASE   := -std=c17 -D_GNU_SOURCE -g -O1 -Isrc $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_CFLAGS := $(FUZZ_BASE) -fsanitize=fuzzer,address,undefined
FUZZ_OBJS   := $(SRCS:%.c=build/fuzz/obj/%.o)

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_BASE) -fsanitize=fuzzer-no-link,address,undefined -MMD -MP -c $< -o $@

build/fuzz/libhark.a: $(FUZZ_OBJS)
	@rm -f $@
	ar rcs $@ $^

build/fuzz/%: fuzz/%.c build/fuzz/libhark.a
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) $< build/fuzz/libhark.a -o $@ $(LDLIBS)

-include $(FUZZ_OBJS:.o=.d)

fuzz: $(FUZZ_BIN)

fuzz-run: fuzz
	@set -e; for f in $(FUZZ_BIN); do \
	    n=$$(basename $$f); mkdir -p build/fuzz/corpus-$$n; \
	    echo "== $$n for $(FUZZ_SECONDS)s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 build/fuzz/corpus-$$n fuzz/seeds/$$n 2>&1 | tail -n 2; \
	done

# ---- benchmarks -----------------------------------------------------------
bench: all
	bench/run.sh

soak: all tests/e2e/node_modules
	bench/soak.sh

# ---- housekeeping ---------------------------------------------------------
format:
	clang-format -i $$(find src tests/unit fuzz bench -name '*.[ch]')

lint:
	scripts/check-layers.sh
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	    --inline-suppr -Isrc --suppress=missingIncludeSystem src

clean:
	rm -rf build
