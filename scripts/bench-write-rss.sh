#!/usr/bin/env bash
# Memory of one build-image `write` invocation: peak RSS for synthetic images of several
# sizes (2 and 16 GiB by default) and ranges of several lengths, next to what the whole
# index and chunk list (the earlier design's inputs) take, in child processes of one run
# against the local moto. Extra arguments go to ferry-write-rss (e.g. --sizes-gib 2,16,64).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$FERRY_ROOT"
bash scripts/setup.sh
cargo build --workspace --bins
exec "$CARGO_TARGET_DIR/debug/ferry-write-rss" "$@"
