#!/usr/bin/env bash
# The failback benchmark: a failback of the 2 GiB sample disk after a 1% change on the
# local stack (uploaded and written bytes, each pass's time, the cutover window), next
# to reading the disk over SSH and a full resync over SSH in the same run. Builds (dev
# profile, shared with the test command), then runs ferry-failback-bench; extra
# arguments go to it (e.g. --rounds 3, --change-percent 5, --workload DIR).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$FERRY_ROOT"
bash scripts/setup.sh
cargo build --workspace --bins
exec "$CARGO_TARGET_DIR/debug/ferry-failback-bench" "$@"
