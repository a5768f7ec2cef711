# Sourced by the other scripts: one cargo target dir outside the checkout, reused
# between runs (the AWS SDK crates take minutes to build).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
FERRY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FERRY_ROOT
