#!/usr/bin/env bash
# Runs every test of the product: unit, store conformance (embedded + DynamoDB on moto),
# black-box HTTP (local server + DynamoDB app), each Lambda function through
# `cargo lambda watch/invoke`, every function under exactly its IAM policy (moto with IAM
# enforced), SIGKILL crash safety, formatting, clippy and the SAM template lint.
# Installs what it needs first. Usage: bash tests/run-all.sh
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check "moto[server]" cfn-lint cargo-lambda "schemathesis==4.32.5"

# Keep build artefacts outside the clone so repeated runs reuse them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/business-platform-target}"
export CARGO_TERM_COLOR=never

cargo fmt --all -- --check
cfn-lint infra/template.yaml infra/tenant-forwarder.yaml
cargo clippy --all-targets --locked -- -D warnings
# The black-box tests start the binaries (local server, Lambda functions) themselves.
cargo build --workspace --bins --locked
log="$(mktemp)"
set +e
cargo test --workspace --locked 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line over every test binary (cargo prints one summary per binary).
awk '/^test result:/ {passed += $4; failed += $6} END {printf "%d passed, %d failed\n", passed, failed}' "$log"
rm -f "$log"
exit "$status"
