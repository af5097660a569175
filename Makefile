# The two commands of the README: `make run` mounts the bundled samples, `make test` runs
# every test (CI runs it through .ci/run). Both set up what they need on a fresh machine.

VENV        := .venv
VENV_FST    := .venv-fst
PYTHON      := $(VENV)/bin/python
BIN         := target/release/zarrmount
MOUNTPOINT  ?= /tmp/zarrmount

.PHONY: run test check build venv venv-fst system-deps bench

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
