# The two commands of the README: `make run` mounts the bundled samples, `make test` runs
# every test and, last, each fuzz target for a bounded time (CI runs it through .ci/run). Both
# set up what they need on a fresh machine.

VENV        := .venv
VENV_FST    := .venv-fst
PYTHON      := $(VENV)/bin/python
BIN         := target/release/zarrmount
MOUNTPOINT  ?= /tmp/zarrmount

.PHONY: run test check build venv venv-fst system-deps bench fuzz fuzz-tool fuzz-seeds fuzz-build fuzz-ci

build:
	cargo build --release --locked

# Mount a memory store and the repository's fixtures/ at $(MOUNTPOINT); `umount $(MOUNTPOINT)` stops it.
run: build
	mkdir -p $(MOUNTPOINT)
	$(BIN) memory://scratch fixtures $(MOUNTPOINT)
	@echo "mounted at $(MOUNTPOINT): try 'ls -R $(MOUNTPOINT)'; stop with 'umount $(MOUNTPOINT)'"

venv: $(VENV)/.installed

$(VENV)/.installed: mount-tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r mount-tests/requirements.txt
	touch $@

# librmn 19.5 and fstd2nc (numpy 1.x, so a venv of its own) for fixtures/fst: make_fst.py
# regenerates the FST fixtures, fstd2nc_dump.py shows what fstd2nc makes of a file.
venv-fst: $(VENV_FST)/.installed

$(VENV_FST)/.installed: fixtures/fst/requirements.txt
	python3 -m venv $(VENV_FST)
	$(VENV_FST)/bin/pip install --quiet -r fixtures/fst/requirements.txt
	touch $@

# Formatting, lints and docs: fast, no mounting.
check:
	cargo fmt --check
	cargo clippy --locked --all-targets --all-features -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --document-private-items --quiet

# Debian packages the mount tests use: fusermount3 (fuse3) for a user's own mount.
system-deps:
	@command -v fusermount3 >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fuse3 >/dev/null; }

test: check build venv venv-fst system-deps
	cargo test --locked
	ZARRMOUNT_PYTHON=$(CURDIR)/$(PYTHON) cargo test --locked --features fuse-tests
	ZARRMOUNT_BIN=$(CURDIR)/$(BIN) ZARRMOUNT_FST_PYTHON=$(CURDIR)/$(VENV_FST)/bin/python \
		$(PYTHON) -m pytest -q mount-tests
	@! grep -q ' fuse' /proc/mounts || { echo "FUSE mounts left behind:"; grep ' fuse' /proc/mounts; exit 1; }
	$(MAKE) fuzz-ci

# Benchmarks against the anchors (root: drops the page cache and mounts); see benches/README.md.
bench: build venv venv-fst
	$(PYTHON) benches/plotfile_read.py --runs 3
	$(PYTHON) benches/engine_read.py --runs 3
	$(PYTHON) benches/fst_read.py --runs 5 --fst-python $(CURDIR)/$(VENV_FST)/bin/python
	$(PYTHON) benches/wds_read.py --runs 3

# The reliability suites one by one (each is also part of `make test`); see README, "Reliability".
# LOAD_SECONDS sets how long the load test runs (default 180).
MOUNT_TEST = ZARRMOUNT_BIN=$(CURDIR)/$(BIN) ZARRMOUNT_FST_PYTHON=$(CURDIR)/$(VENV_FST)/bin/python \
	$(if $(LOAD_SECONDS),ZARRMOUNT_LOAD_SECONDS=$(LOAD_SECONDS)) $(PYTHON) -m pytest -q -s
.PHONY: test-load test-faults test-security
test-load test-faults test-security: build venv venv-fst
	$(MOUNT_TEST) mount-tests/$(subst -,_,$@).py

# Fuzzing (fuzz/README.md): `make fuzz` runs every parser's fuzz target for FUZZ_SECONDS each,
# from seeds cut out of fixtures/; `make test` runs each for FUZZ_TEST_SECONDS. A crash, a hang
# or an allocation of 256 MiB fails the step (limits in fuzz/run.sh). `make fuzz-seeds` only
# refills fuzz/corpus/.
#
# cargo-fuzz builds with AddressSanitizer, which it asks for with -Zsanitizer: a nightly flag.
# Only stable rustc is here, so RUSTC_BOOTSTRAP=1 lets stable take it (the ASan runtime ships
# with stable's rust-std). `--sanitizer none` would build without it, but then libFuzzer's
# -malloc_limit_mb does nothing (its malloc hooks come from the sanitizer runtime), and one
# oversized allocation is the bug these parsers are most exposed to.
FUZZ_SECONDS      ?= 60
FUZZ_TEST_SECONDS ?= 45

fuzz-tool:
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

fuzz-seeds:
	cargo run --locked --quiet --example fuzz_seeds -- fixtures fuzz/corpus

fuzz-build: fuzz-tool
	cargo fetch --locked --manifest-path fuzz/Cargo.toml
	RUSTC_BOOTSTRAP=1 cargo fuzz build

fuzz: fuzz-build fuzz-seeds
	fuzz/run.sh $(FUZZ_SECONDS)

fuzz-ci: fuzz-build fuzz-seeds
	fuzz/run.sh $(FUZZ_TEST_SECONDS)
