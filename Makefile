# nnc: `make demo` and `make test` work on a fresh Debian 12 machine.
# Each installs what is missing (apt-get, when root), configures, builds, then does its job.

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= 2
PACKAGES   := cmake make gcc libc6-dev flex bison llvm-dev zlib1g-dev python3 python3-numpy python3-torch \
              dataset-fashion-mnist clang libclang-rt-dev
PACKAGES   += graphviz librsvg2-bin
FUZZ_SECONDS ?= 30
# Each runtime reader's fuzz target (npz, csv, idx) runs a third of that, beside the front end's.
FUZZ_RT_SECONDS ?= $(shell expr $(FUZZ_SECONDS) / 3)
# Fashion-MNIST epochs of `make demo`: quick but real (the example's own train block trains longer).
DEMO_EPOCHS  ?= 2

.PHONY: all deps build test test-fast test-asan asan-build fuzz fuzz-run fuzz-front fuzz-rt demo bench clean

all: build

deps:
	@missing=$$(for p in $(PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:" $$missing; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  else \
	    echo "missing packages:" $$missing; \
	    echo "install them with: sudo apt-get install" $$missing; exit 1; \
	  fi; \
	fi

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# Everything: the suite, the suite again under the sanitizers, a bounded fuzz run.
test: test-fast test-asan
	$(MAKE) --no-print-directory fuzz-run FUZZ_SECONDS=$(FUZZ_SECONDS)

test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# A clang build with AddressSanitizer, UndefinedBehaviorSanitizer and the libFuzzer target.
asan-build: deps
	CC=clang cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DNNC_FUZZ=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)

test-asan: asan-build
	cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS)

# Fuzz the scanner, parser and checks, seeded with every .nn of the project, and beside it
# (the machine has two cores; each fuzzer runs on one) the runtime's readers in turn.
# `make fuzz` fuzzes the front end until stopped; `make test` runs FUZZ_SECONDS of each
# side and must find nothing.
fuzz: asan-build
	$(MAKE) --no-print-directory fuzz-front FUZZ_SECONDS=0

fuzz-run:
	$(MAKE) --no-print-directory -j2 fuzz-front fuzz-rt

fuzz-front:
	rm -rf $(ASAN_BUILD)/fuzz-seeds && mkdir -p $(ASAN_BUILD)/fuzz-seeds $(ASAN_BUILD)/fuzz-corpus
	cp examples/*.nn $(ASAN_BUILD)/fuzz-seeds/
	for f in tests/*/*.nn; do cp "$$f" "$(ASAN_BUILD)/fuzz-seeds/$$(echo $$f | tr / _)"; done
	$(ASAN_BUILD)/fuzz_frontend -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=4096 \
	  -print_final_stats=1 -artifact_prefix=$(ASAN_BUILD)/ \
	  $(ASAN_BUILD)/fuzz-corpus $(ASAN_BUILD)/fuzz-seeds

# The runtime's readers, seeded with small valid files (tests/fuzz/rt_seeds.py); their
# messages are closed away (-close_fd_mask=2), libFuzzer's and the sanitizers' reports kept.
# Until stopped, one reader: make fuzz-rt FUZZ_RT_SECONDS=0 FUZZ_READERS=npz
FUZZ_READERS ?= npz csv idx
fuzz-rt:
	rm -rf $(ASAN_BUILD)/fuzz-rt-seeds
	/usr/bin/python3 tests/fuzz/rt_seeds.py $(ASAN_BUILD)/fuzz-rt-seeds
	for r in $(FUZZ_READERS); do \
	  mkdir -p $(ASAN_BUILD)/fuzz-rt-corpus/$$r && \
	  $(ASAN_BUILD)/fuzz_$$r -max_total_time=$(FUZZ_RT_SECONDS) -timeout=10 -rss_limit_mb=4096 \
	    -close_fd_mask=2 -print_final_stats=1 -artifact_prefix=$(ASAN_BUILD)/$$r- \
	    $(ASAN_BUILD)/fuzz-rt-corpus/$$r $(ASAN_BUILD)/fuzz-rt-seeds/$$r || exit 1; \
	done

demo: build
	$(BUILD)/nnc examples/xor.nn -o $(BUILD)/xor
	cd $(BUILD) && ./xor
	$(BUILD)/nnc examples/fashion_mlp.nn -o $(BUILD)/fashion_mlp
	cd $(BUILD) && ./fashion_mlp --epochs $(DEMO_EPOCHS)

# Train three Fashion-MNIST MLPs with nnc, a C + OpenBLAS trainer, plain C loops and
# PyTorch; print one table (bench/run.py, bench/RESULTS.md). BENCH_ARGS: e.g. --quick.
BENCH_PACKAGES := python3-torch libopenblas-dev
BENCH_ARGS     ?=

bench: build
	@$(MAKE) --no-print-directory deps PACKAGES="$(BENCH_PACKAGES)"
	/usr/bin/python3 bench/run.py --nnc $(BUILD)/nnc --out $(BUILD)/bench $(BENCH_ARGS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

# Random generated programs through the whole compiler until stopped (tests/gen/gen.py),
# GEN_JOBS at a time, niced; each failure is reduced into tests/gen/cases.
GEN_JOBS ?= 1
.PHONY: fuzz-deep
fuzz-deep: build
	nice -n 10 /usr/bin/python3 tests/gen/gen.py forever --jobs $(GEN_JOBS) --nnc $(BUILD)/nnc

# The pictures of docs/ the README shows (issue 15): the xor graph (--emit=dot; a test checks
# it is current) and the training plots of deep_sigmoid and deep_relu (--plot).
.PHONY: docs
docs: build
	$(BUILD)/nnc --emit=dot examples/xor.nn | dot -Tsvg -o docs/xor.svg
	for m in deep_sigmoid deep_relu; do \
	  $(BUILD)/nnc examples/$$m.nn -o $(BUILD)/$$m && \
	  $(BUILD)/$$m --quiet --plot docs/$$m.svg --save $(BUILD)/$$m.npz || exit 1; \
	done
# Installs bin/nnc, its runtime (lib/nnc), the header (include/nnc) and the man page nnc(1)
# under PREFIX; the installed nnc finds its runtime beside itself, so the build folder may go.
PREFIX ?= /usr/local
.PHONY: install
install: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target nnc nncrt nncrt_main
	cmake --install $(BUILD) --prefix $(PREFIX)

