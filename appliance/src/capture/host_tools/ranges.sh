# Ferry: the bytes of the ranges listed on stdin ("offset length" lines), back to back,
# with GNU dd. $1 device.
while read -r at n; do
  dd if="$1" iflag=skip_bytes,count_bytes,fullblock bs=1M skip="$at" count="$n" status=none || exit 1
done
