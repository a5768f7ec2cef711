# Ferry: the SHA-256 of each block of a disk with GNU coreutils, one hex line per block.
# $1 device, $2 block size, $3 segments of 64 blocks. A segment is cut into block files
# in a private directory in /dev/shm (memory), hashed by one sha256sum, then removed.
set -e
d=$(mktemp -d /dev/shm/ferry-hash.XXXXXX)
trap 'rm -rf "$d"' EXIT
trap 'exit 1' INT TERM HUP PIPE
i=0
while [ "$i" -lt "$3" ]; do
  dd if="$1" bs=$(($2 * 64)) skip="$i" count=1 iflag=fullblock status=none \
    | split -a 2 -d -b "$2" - "$d/b"
  sha256sum "$d"/b* | cut -c1-64
  rm -f "$d"/b*
  i=$((i + 1))
done
