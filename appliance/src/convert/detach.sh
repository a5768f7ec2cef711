# ferry convert, in the helper: everything under $2 unmounted, the image's volume groups
# deactivated, the writes flushed to the image.
DISK=$1 MNT=$2
sync
umount -R "$MNT" 2>/dev/null || umount -R -l "$MNT" 2>/dev/null || true
for vg in $(pvs --noheadings -o vg_name "$DISK"* 2>/dev/null | sort -u); do
  vgchange -an "$vg" >/dev/null 2>&1 || true
done
sync
! grep -q " $MNT" /proc/mounts
