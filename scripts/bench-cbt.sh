#!/usr/bin/env bash
# Changed-block capture benchmark: Ferry's full and incremental captures over a loopback
# sshd against `ssh host cat disk` and `ssh cat | rustic backup --stdin`, on the 2 GiB
# sample disk after its day of changes. Installs rustic (crates.io) if missing, builds
# in release mode, prints the table. Extra arguments go to ferry-cbt-bench (--rounds N,
# --workload DIR).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$FERRY_ROOT"
bash scripts/setup.sh
command -v rustic >/dev/null || [ -x "$HOME/.cargo/bin/rustic" ] || cargo install --locked rustic-rs
cargo build --release --bins -p ferry-appliance -p ferry-tests
exec "$CARGO_TARGET_DIR/release/ferry-cbt-bench" "$@"
