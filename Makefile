# Two entry points, per Scope's plugin conventions:
#   make run   installs what is missing, then runs the collectors plugin on the default socket
#   make test  installs what is missing, then runs every check and test
# and the image of any plugin in the workspace:
#   make image [PLUGIN=collectors]   a FROM scratch image named scope-plugin/<PLUGIN>
SHELL := /bin/bash
# Debian packages the build and the tests use: curl (runtime test), procps (vmstat,
# the independent IO-wait measurement), clang and libbpf-dev (the eBPF collector's
# build), python3 (the eBPF tests' servers), busybox-static (a forking HTTP server for the
# container tests).
APT_PACKAGES := curl procps clang libbpf-dev python3 busybox-static

# The plugin package `make image` builds.
PLUGIN ?= collectors

.PHONY: setup docker-setup validate-setup run image test lint bench fuzz

setup:
	@missing=(); for pkg in $(APT_PACKAGES); do dpkg -s "$$pkg" >/dev/null 2>&1 || missing+=("$$pkg"); done; \
	if [ $${#missing[@]} -gt 0 ]; then \
		echo "installing: $${missing[*]}"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$${missing[@]}" >/dev/null; \
	fi
	@command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first"; exit 1; }
	@rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt

# Docker, for images and the container tests: Debian's docker.io when there is no engine,
# and dockerd started when none answers (CI starts with none running).
docker-setup:
	@command -v dockerd >/dev/null || { echo "installing: docker.io"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null; }
	@docker info >/dev/null 2>&1 || { echo "starting dockerd (log: /var/log/scope-plugin-dockerd.log)"; \
		nohup dockerd >/var/log/scope-plugin-dockerd.log 2>&1 & \
		for i in $$(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done; \
		docker info >/dev/null 2>&1 || { echo "dockerd did not start: see /var/log/scope-plugin-dockerd.log"; exit 1; }; }

# The Kubernetes API schemas, to validate the DaemonSet without a cluster.
validate-setup:
	@python3 -c "import kubernetes_validate" 2>/dev/null || python3 -m pip install -q --root-user-action=ignore kubernetes-validate

run: setup
	cargo run --release -p collectors

image: setup docker-setup
	deploy/docker/build-image -p $(PLUGIN)

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test: lint docker-setup validate-setup
	cargo test --workspace --all-targets
	cargo test --workspace --doc

# Benchmarks (BENCHMARKS.md): needs root for the eBPF figures, wrk and nginx, and Docker
# for the image figures.
# BEFORE=<git revision> also measures that revision's scale-plugin, side by side in the
# scale section; EBPF_BEFORE=<git revision> that revision's eBPF program, in the same rounds
# of the pinned eBPF section. Each is built in a throw-away worktree under target/.
build_before = dir=target/before-$(1); rm -rf "$$dir"; git worktree prune; \
	git worktree add --detach -q "$$dir" $(1) && \
	cargo build -q --release --manifest-path "$$dir/Cargo.toml" --target-dir target/before \
		-p $(2) --bin $(3); status=$$?; \
	git worktree remove --force "$$dir"; exit $$status
bench: setup docker-setup
	@for pkg in wrk nginx-light; do dpkg -s "$$pkg" >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$$pkg" >/dev/null; }; done
	$(if $(BEFORE),@($(call build_before,$(BEFORE),scope-plugin-tests,scale-plugin)))
	$(if $(EBPF_BEFORE),@($(call build_before,$(EBPF_BEFORE),collectors,collectors)))
	$(if $(BEFORE),SCALE_BEFORE=$(CURDIR)/target/before/release/scale-plugin) \
	$(if $(EBPF_BEFORE),EBPF_BEFORE=$(EBPF_BEFORE) EBPF_BEFORE_BINARY=$(CURDIR)/target/before/release/collectors) \
		cargo bench -p scope-plugin-tests

# Coverage-guided fuzzing (cargo-fuzz, libFuzzer; needs the nightly toolchain): each target
# for FUZZ_SECONDS, from the corpus in the repository (collectors/fuzz/corpus/<target>,
# scope-plugin/fuzz/corpus/<target>). New inputs go to target/fuzz-corpus, so a run leaves
# the repository as it was; a crash is saved under <crate>/fuzz/artifacts and fails the run.
FUZZ_SECONDS ?= 60
fuzz: setup
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	@set -o pipefail; for target in collectors/proc_stat collectors/pressure collectors/http_classify scope-plugin/check_report; do \
		crate=$${target%/*}; name=$${target#*/}; scratch=$(CURDIR)/target/fuzz-corpus/$$name; \
		mkdir -p "$$scratch"; echo "fuzzing $$name for $(FUZZ_SECONDS) s"; \
		(cd $$crate && cargo +nightly fuzz run $$name "$$scratch" fuzz/corpus/$$name -- \
			-max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 2>&1 | grep -E '^#[0-9]+ +DONE|^Done|ERROR|panicked|SUMMARY') || exit 1; \
	done
