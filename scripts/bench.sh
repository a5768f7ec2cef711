#!/usr/bin/env bash
# The benchmark: Ferry vs restic, rustic, borg and casync on the 2 GiB workload, plus
# Ferry's capture over SSH vs a local path. Installs the peers (Debian's restic,
# borgbackup, casync; rustic from crates.io), builds in release mode, prints the table.
# Extra arguments go to ferry-bench (e.g. --rounds 5, --peers rustic,restic).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$FERRY_ROOT"
bash scripts/setup.sh
need=()
command -v restic >/dev/null || need+=(restic)
command -v borg >/dev/null || need+=(borgbackup)
command -v casync >/dev/null || need+=(casync)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v rustic >/dev/null || [ -x "$HOME/.cargo/bin/rustic" ] || cargo install --locked rustic-rs
cargo build --release --bins -p ferry-appliance -p ferry-tests
exec "$CARGO_TARGET_DIR/release/ferry-bench" "$@"
