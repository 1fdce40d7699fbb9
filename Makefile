# lra-bench. `make` builds build/lra-bench; `make test` builds and runs the Check suites.
# Dependencies are found with pkg-config (scripts/setup.sh installs them on Debian).
CC      ?= gcc
PKGS    := openblas libcjson libcurl zlib libarchive libpng ompi-c
# -march=native like llm.c: the binary is built where it runs. `make ARCH=` for a portable build.
ARCH    ?= -march=native
OPT     ?= -O2
CFLAGS  ?= $(OPT) $(ARCH) -g
CFLAGS  += -std=c11 -Wall -Wextra -fopenmp $(EXTRA_CFLAGS)
# the attention kernels gain ~2x from vectorised expf (glibc's libmvec needs -ffast-math); they
# use finite sentinels instead of -inf, and hold no NaN checks (those live in harness/run/run.c)
KERNEL_CFLAGS := -O3 -ffast-math
# OpenMP threads that wait sleep instead of spinning, for the tests and the CI matrix (unless the
# environment says otherwise): beside other jobs, spinning threads of two processes take each
# other's cores, and a ci cell ran 7.7x slower (483 s, 63 s alone); passive waits cost about 3% on
# an idle machine (docs/speed.md)
export OMP_WAIT_POLICY ?= passive
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))
# oneDNN (the encoder's matrix products, harness/encoder/gemm.c): Debian 12's libdnnl-dev ships a CMake
# package but no .pc file, so pkg-config is asked first and -ldnnl is the fallback.
DNNL_LIBS  := $(shell pkg-config --libs dnnl 2>/dev/null || echo -ldnnl)
GIT_COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
DEFS := -DLRA_GIT_COMMIT='"$(GIT_COMMIT)"' -DLRA_CFLAGS='"$(CFLAGS)"'
LDLIBS := $(PKG_LIBS) $(DNNL_LIBS) -lm

B := build
# Every .c of the library's folders is built: a new backend (attention/), task (tasks/) or
# harness file needs no line here. harness/main.c is the binary's own.
LIB_SRC := $(wildcard common/*.c attention/*.c datasets/*.c tasks/*.c harness/encoder/*.c harness/run/*.c \
                      harness/report/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
TEST_SRC := $(wildcard tests/*.c)
TEST_OBJ := $(TEST_SRC:%.c=$(B)/%.o)

all: $(B)/lra-bench

# Each object depends on the headers it includes, as the compiler lists them (-MMD, into a .d file
# beside it; -MP: a deleted header is no error): a new backend's line in backends.def rebuilds
# registry.o, not the tree.
DEPFLAGS := -MMD -MP
-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(B)/harness/main.d

$(B)/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) $(PKG_CFLAGS) $(DEFS) -c $< -o $@

$(B)/attention/%.o: attention/%.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(KERNEL_CFLAGS) $(DEPFLAGS) $(PKG_CFLAGS) -c $< -o $@

# Reports name the commit the binary was built from: sysinfo.o is rebuilt whenever that name
# (commit, -dirty) differs from the last build's, not only when a source changes.
$(B)/version.stamp: FORCE
	@mkdir -p $(B)
	@echo '$(GIT_COMMIT)' | cmp -s - $@ || echo '$(GIT_COMMIT)' > $@
$(B)/harness/run/sysinfo.o: $(B)/version.stamp
FORCE:
.PHONY: FORCE

# gelu.c: vector erff from libmvec, as the attention kernels' expf (see gelu.c); layernorm.c:
# vectorised row sums (see layernorm.c)
$(B)/harness/encoder/gelu.o $(B)/harness/encoder/layernorm.o: CFLAGS += $(KERNEL_CFLAGS)
# layers.c: -O3 vectorises its per-column loops (bias gradients, dropout, head splits); without
# -ffast-math nothing is reordered, so the bits are those of -O2. bf16.c: its rounding loop.
$(B)/harness/encoder/layers.o $(B)/harness/encoder/bf16.o: CFLAGS += -O3

# peak.c measures the FMA peak: a * b + c must contract to one instruction
$(B)/harness/report/peak.o: CFLAGS += -ffp-contract=fast

$(B)/liblra.a: $(LIB_OBJ)
	ar rcs $@ $^

$(B)/lra-bench: $(B)/harness/main.o $(B)/liblra.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/run_tests: $(TEST_OBJ) $(B)/liblra.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs check)

# The speed sweep of the four backends (see harness/report/speed.c; docs/speed.md).
bench: $(B)/lra-bench
	$(B)/lra-bench speed --backend=full,agent,moe,mita --lengths=1024,4096,16384

# The tests run the binary too (end-to-end runs, exit codes), so both are built.
test: $(B)/lra-bench $(B)/tests/run_tests
	LRA_BENCH=$(B)/lra-bench $(B)/tests/run_tests

# What CI runs (.ci/run): the tests (their fixtures becoming the fuzzers' seed corpora), the tests
# again under the sanitizers, every fuzzer on its corpus and 5 s more (a smoke test: the long runs
# are `make fuzz-run`), then the comparison matrix of every backend on every task with data here,
# printed to the log (scripts/ci-matrix.sh). All of it under OpenBLAS's own choice of kernels, as
# docs/ci-baseline/ was recorded: an OPENBLAS_CORETYPE in the environment (this project's machines
# set Haswell) picks others, with other bits and, on AVX-512 CPUs, half the speed of the attention
# tiles' products (without it five of the suites ran 11% faster, mita's MQAR cell 25%: docs/ci.md).
ci:
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(MAKE) ci-steps
ci-steps: fuzz-corpus
	$(MAKE) asan ASAN_EXCLUDE_TAGS=slow
	$(MAKE) fuzz-run FUZZ_SECONDS=5
	sh scripts/ci-matrix.sh

# The tests under AddressSanitizer and UndefinedBehaviorSanitizer, built in their own directory.
# `make asan` runs every test; CI leaves out the tests tagged slow (the attention gradient checks,
# whose kernels the other attention tests still run) with ASAN_EXCLUDE_TAGS=slow. Sanitized tests
# run mostly on one core, so the suites go in two processes side by side: ASAN_SHARD's suites
# (about half the time: the checkpoint suite's kills and resumes) in one, the rest in the other,
# whose log follows the first's. A new suite lands in the second.
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ASAN_EXCLUDE_TAGS ?=
ASAN_SHARD := checkpoint,claim,mqar
ASAN_RUN := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    CK_EXCLUDE_TAGS=$(ASAN_EXCLUDE_TAGS) LRA_BENCH=build-asan/lra-bench
asan:
	$(MAKE) B=build-asan OPT=-O1 EXTRA_CFLAGS="$(SAN)" KERNEL_CFLAGS="-O1 -ffast-math" build-asan/lra-bench build-asan/tests/run_tests
	@$(ASAN_RUN) LRA_TEST_SKIP_SUITES=$(ASAN_SHARD) build-asan/tests/run_tests > build-asan/tests-rest.log 2>&1 & \
	    rest=$$!; echo "asan: suites $(ASAN_SHARD) here, the others beside them (log below)"; \
	    $(ASAN_RUN) LRA_TEST_SUITES=$(ASAN_SHARD) build-asan/tests/run_tests; shard=$$?; \
	    wait $$rest; others=$$?; echo "asan: the other suites:"; cat build-asan/tests-rest.log; \
	    test $$shard -eq 0 && test $$others -eq 0

# libFuzzer harnesses (fuzz/, clang from Debian): one per parser of outside input, built with
# AddressSanitizer and UBSan into build-fuzz/. `make fuzz-corpus` runs the tests with
# LRA_FUZZ_CORPUS set, so that the files they write in the official formats become seed corpora;
# `make fuzz-run FUZZ_SECONDS=600` runs every harness that long on its corpus, two at a time.
FUZZERS := listops aan pathfinder_meta png archive cifar idx options report checkpoint
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_SECONDS ?= 600
# The fuzz build is portable (ARCH=) and -O1: clang then cannot vectorise GELU's `omp simd` loops
# (-Wpass-failed) and notes that peak.c's 16-float vectors change the ABI without AVX-512
# (-Wpsabi); neither matters to a fuzzer, so both notes are off there.
fuzz:
	$(MAKE) B=build-fuzz CC=clang OPT=-O1 ARCH= EXTRA_CFLAGS="$(FUZZ_SAN) -fsanitize=fuzzer-no-link -Wno-pass-failed -Wno-psabi" \
	    KERNEL_CFLAGS="-O1" $(FUZZERS:%=build-fuzz/fuzz/fuzz_%)

$(B)/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h $(B)/liblra.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer $(PKG_CFLAGS) -o $@ $< $(B)/liblra.a $(LDLIBS)

fuzz-corpus: $(B)/lra-bench $(B)/tests/run_tests
	rm -rf build-fuzz/corpus
	LRA_FUZZ_CORPUS=$(CURDIR)/build-fuzz/corpus LRA_BENCH=$(B)/lra-bench $(B)/tests/run_tests
	sh scripts/fuzz.sh corpus-check $(FUZZERS)

fuzz-run: fuzz
	sh scripts/fuzz.sh run $(FUZZ_SECONDS) $(FUZZERS)

clean:
	rm -rf $(B) build-asan build-fuzz

.PHONY: all test bench ci ci-steps asan fuzz fuzz-corpus fuzz-run clean
