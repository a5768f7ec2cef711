#!/usr/bin/env bash
# The image benchmark: build-image (EBS snapshot + AMI from a recovery point) on the
# local stack next to coldsnap uploading the same 2 GiB image with the same EBS direct
# APIs, full and after a day of changes. Installs coldsnap from crates.io if missing,
# builds in release mode, prints the table. Extra arguments go to ferry-image-bench
# (e.g. --rounds 5, --no-coldsnap).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$FERRY_ROOT"
bash scripts/setup.sh
command -v coldsnap >/dev/null || [ -x "$HOME/.cargo/bin/coldsnap" ] || cargo install --locked coldsnap
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --bins -p ferry-appliance -p ferry-tests
exec "$CARGO_TARGET_DIR/release/ferry-image-bench" "$@"
