# Two entry points, per Scope's plugin conventions:
#   make run   installs what is missing, then runs the collectors plugin on the default socket
#   make test  installs what is missing, then runs every check and test
SHELL := /bin/bash
# Debian packages the build and the tests use: curl (runtime test), procps (vmstat,
# the independent IO-wait measurement), clang and libbpf-dev (the eBPF collector's
# build), python3 (the eBPF tests' servers).
APT_PACKAGES := curl procps clang libbpf-dev python3

.PHONY: setup run test lint bench

setup:
	@missing=(); for pkg in $(APT_PACKAGES); do dpkg -s "$$pkg" >/dev/null 2>&1 || missing+=("$$pkg"); done; \
	if [ $${#missing[@]} -gt 0 ]; then \
		echo "installing: $${missing[*]}"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$${missing[@]}" >/dev/null; \
	fi
	@command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first"; exit 1; }
	@rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt

run: setup
	cargo run --release -p collectors

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test: lint
	cargo test --workspace --all-targets
	cargo test --workspace --doc

# Benchmarks (BENCHMARKS.md): needs root for the eBPF figures, and wrk and nginx.
bench: setup
	@for pkg in wrk nginx-light; do dpkg -s "$$pkg" >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$$pkg" >/dev/null; }; done
	cargo bench -p scope-plugin-tests
