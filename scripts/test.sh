#!/usr/bin/env bash
# The whole test suite: installs what it needs, checks formatting and lints, builds,
# then runs unit and integration tests (which start their own moto and sshd peers).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$FERRY_ROOT"
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace --bins
cargo test --workspace
