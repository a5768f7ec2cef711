#!/usr/bin/env bash
# The whole test suite: installs what it needs, checks formatting, the SAM template
# (cfn-lint) and the state machines (asl-validator), lints, builds,
# then runs unit and integration tests (which start their own moto and sshd peers).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$FERRY_ROOT"
bash scripts/setup.sh
cargo fmt --all -- --check
cfn-lint infra/template.yaml
shopt -s nullglob
for asl in statemachines/*.asl.json; do
  "${XDG_CACHE_HOME:-$HOME/.cache}/ferry/node/node_modules/.bin/asl-validator" --json-path "$asl"
done
shopt -u nullglob
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace --bins
cargo test --workspace
