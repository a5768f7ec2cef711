#!/usr/bin/env bash
# The failover benchmark: orchestration time of a failover of an 8-host, 3-tier group
# on the local stack, alarm -> traffic switched, and in the same run the same hosts
# brought up with `ferry migrate` one after another. Builds (dev profile, shared with
# the test command), then runs ferry-failover-bench; extra arguments go to it
# (e.g. --rounds 5, --poll-s 10, --no-migrate).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$FERRY_ROOT"
bash scripts/setup.sh
cargo build --workspace --bins
exec "$CARGO_TARGET_DIR/debug/ferry-failover-bench" "$@"
