#!/usr/bin/env bash
# The burst benchmark: alarm -> capacity in service, and the scale-in, on the local
# stack, next to the same steps scripted with the aws CLI in the same run; then the
# load metric's publishing cost (API calls per hour per tier). Builds (dev profile,
# shared with the test command), then runs ferry-burst-bench; extra arguments go to it
# (e.g. --rounds 5, --publish-s 120).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$FERRY_ROOT"
bash scripts/setup.sh
cargo build --workspace --bins
exec "$CARGO_TARGET_DIR/debug/ferry-burst-bench" "$@"
