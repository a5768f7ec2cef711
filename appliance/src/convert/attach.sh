# ferry convert, in the helper: make the image's volumes visible, find its root file
# system and mount it read-write at $2. Prints `ROOT <device>`, then one `DEV` line per
# block device of the image (lsblk's pairs: NAME, TYPE, UUID, LABEL, FSTYPE).
set -eu
DISK=$1 MNT=$2
mkdir -p "$MNT"
udevadm settle 2>/dev/null || true
for vg in $(pvs --noheadings -o vg_name "$DISK"* 2>/dev/null | sort -u); do
  vgchange -ay "$vg" >/dev/null
done
udevadm settle 2>/dev/null || true
root=
for dev in $(lsblk -nrpo NAME,FSTYPE "$DISK" | awk '$2 ~ /^(ext[234]|xfs|btrfs)$/ { print $1 }'); do
  mount -o ro "$dev" "$MNT" 2>/dev/null || continue
  if [ -f "$MNT/etc/fstab" ] && { [ -e "$MNT/sbin/init" ] || [ -e "$MNT/usr/sbin/init" ] || [ -e "$MNT/lib/systemd/systemd" ]; }; then
    root=$dev
  fi
  umount "$MNT"
  [ -n "$root" ] && break
done
if [ -z "$root" ]; then
  echo "no root file system (one holding /etc/fstab and an init) on $DISK" >&2
  exit 3
fi
mount "$root" "$MNT"
echo "ROOT $root"
lsblk -nPpo NAME,TYPE,UUID,LABEL,FSTYPE "$DISK" | sed 's/^/DEV /'
