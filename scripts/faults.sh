#!/usr/bin/env bash
# The fault suite: for each stage (capture, restore to a file, restore onto a host, image
# build, migration) a kill -9 or an injected fault, then the rerun; prints the table of
# stage x fault -> outcome. Each case fails loudly when an invariant breaks (a point
# without a finished capture, a lost point, a rerun that does not converge).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$FERRY_ROOT"
bash scripts/setup.sh
cargo build --workspace --bins
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cargo test -p ferry-tests --test integration -- faults:: restore_to_host::restore_to_host_refuses build_image_fn::a_build_after --nocapture | tee "$out" >&2
# SIGTERM, a dropped connection and a failing read during an LVM capture: a real guest.
cargo test -p ferry-tests --test vm -- vm_lvm_snapshot --nocapture | tee -a "$out" >&2
echo
echo "| stage | fault | outcome |"
echo "|---|---|---|"
grep '^FAULT | ' "$out" | sed 's/^FAULT //' | sort
