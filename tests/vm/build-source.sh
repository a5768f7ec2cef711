#!/usr/bin/env bash
# Builds the VM test bed's source server: a 2 GiB raw disk as a server that ran on KVM
# with virtio disks has it. MBR; /boot on ext4 (partition 1, 256 MiB); root on LVM
# (vg/root on partition 2, a quarter of the volume group left free for snapshots);
# Debian bookworm with the generic kernel, GRUB from the disk,
# sshd with the test's key; an initramfs of a short module list (virtio, dm_mod, ext4:
# what MODULES=dep leaves on such a server) without the NVMe driver; /etc/fstab naming
# /dev/vda1; the network pinned to ens3 and the NIC's name bound to its MAC address by a
# udev rule; the console on the screen only.
#
# Beside it, the conversion helper (what `ferry convert` boots with a disk attached):
# the same packages as a plain ext4 root file system, its kernel and initramfs as files.
#
# Built without device-mapper or partition scanning on this machine (neither exists in
# the test kernel): each partition through a loop device at its offset, the LVM metadata
# written without activating anything, the root filesystem written into the LV's extents
# at their offset, GRUB's boot and core images written into the MBR and the gap after it.
#
# Usage: build-source.sh OUT_DIR PUBLIC_KEY_FILE
# Writes OUT_DIR/source.raw, OUT_DIR/source.facts (offsets and UUIDs) and
# OUT_DIR/helper/{root.raw,vmlinuz,initrd.img}. The debs are
# cached in OUT_DIR/debs, so a second build does not download again.
set -euo pipefail
OUT=$(realpath "$1")
KEY=$(realpath "$2")
mkdir -p "$OUT/debs"
ROOT=$(mktemp -d "$OUT/root.XXXXXX")
LOOPS=()
cleanup() {
  for d in dev sys proc; do umount "$ROOT/$d" 2>/dev/null || true; done
  for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null || true; done
  rm -rf "$ROOT"
}
trap cleanup EXIT

mmdebstrap --mode=root --variant=minbase --skip=cleanup/apt/cache \
  --setup-hook="mkdir -p \"\$1/var/cache/apt/archives\" && cp -a $OUT/debs/. \"\$1/var/cache/apt/archives/\" 2>/dev/null || true" \
  --customize-hook="cp -a \"\$1/var/cache/apt/archives/\"*.deb $OUT/debs/ 2>/dev/null || true" \
  --include=linux-image-amd64,lvm2,openssh-server,initramfs-tools,systemd-sysv,udev,ifupdown,isc-dhcp-client,e2fsprogs,iproute2,kmod,grub-pc-bin \
  bookworm "$ROOT" >"$OUT/mmdebstrap.log" 2>&1
rm -f "$ROOT"/var/cache/apt/archives/*.deb
KVER=$(basename "$ROOT"/boot/vmlinuz-* | sed 's/^vmlinuz-//')

# What a server that ran on virtio keeps in its initramfs.
printf 'virtio_pci\nvirtio_blk\nvirtio_net\ndm_mod\next4\n' >"$ROOT/etc/initramfs-tools/modules"
sed -i 's/^MODULES=.*/MODULES=list/' "$ROOT/etc/initramfs-tools/initramfs.conf"
echo ferry-source >"$ROOT/etc/hostname"
printf 'auto lo\niface lo inet loopback\n\nallow-hotplug ens3\niface ens3 inet dhcp\n' >"$ROOT/etc/network/interfaces"
printf '/dev/mapper/vg-root / ext4 errors=remount-ro 0 1\n/dev/vda1 /boot ext4 defaults 0 2\n' >"$ROOT/etc/fstab"
install -d -m 700 "$ROOT/root/.ssh"
install -m 600 "$KEY" "$ROOT/root/.ssh/authorized_keys"
for d in proc sys dev; do mount --bind "/$d" "$ROOT/$d"; done
# The helper's initramfs first (no MAC-bound rule in it), then the source's: its
# initramfs carries the rule too, as initramfs-tools' udev hook copies it.
chroot "$ROOT" update-initramfs -u -k "$KVER" >/dev/null 2>&1
HELPER="$OUT/helper"
mkdir -p "$HELPER"
cp "$ROOT/boot/vmlinuz-$KVER" "$HELPER/vmlinuz"
cp "$ROOT/boot/initrd.img-$KVER" "$HELPER/initrd.img"
printf 'SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{address}=="52:54:00:12:34:56", NAME="ens3"\n' \
  >"$ROOT/etc/udev/rules.d/70-persistent-net.rules"
chroot "$ROOT" update-initramfs -u -k "$KVER" >/dev/null 2>&1
for d in dev sys proc; do umount "$ROOT/$d"; done

DISK="$OUT/source.raw"
rm -f "$DISK"
truncate -s 2G "$DISK"
printf 'label: dos\nstart=2048, size=524288, type=83, bootable\nstart=526336, type=8e\n' | sfdisk -q "$DISK"
P1=$((2048 * 512)); P1S=$((524288 * 512))
P2=$((526336 * 512)); P2S=$(($(stat -c %s "$DISK") - P2))

# LVM metadata on partition 2, nothing activated.
L2=$(losetup -f --show -o "$P2" --sizelimit "$P2S" "$DISK"); LOOPS+=("$L2")
C="devices { filter=[\"a|^$L2\$|\",\"r|.*|\"] obtain_device_list_from_udev=0 } activation { udev_sync=0 udev_rules=0 } backup { backup=0 archive=0 }"
pvcreate -q --nolocking --config "$C" "$L2" 2>/dev/null
vgcreate -q --nolocking --config "$C" vg "$L2" 2>/dev/null
lvcreate -q --nolocking --config "$C" --driverloaded n -an -Zn -l 75%FREE -n root vg 2>/dev/null
PE_START=$(pvs --nolocking --config "$C" --noheadings --units b --nosuffix -o pe_start "$L2" 2>/dev/null | tr -d ' ')
EXTENT=$(vgs --nolocking --config "$C" --noheadings --units b --nosuffix -o vg_extent_size vg 2>/dev/null | tr -d ' ')
RANGE=$(lvs --nolocking --config "$C" --noheadings -o seg_pe_ranges vg/root 2>/dev/null | tr -d ' ')
FIRST=${RANGE#*:}; FIRST=${FIRST%-*}; LAST=${RANGE##*-}
LV_OFF=$((P2 + PE_START + FIRST * EXTENT)); LV_SIZE=$(((LAST - FIRST + 1) * EXTENT))
losetup -d "$L2"; LOOPS=()

# /boot on partition 1, / into the LV's extents.
BOOT_UUID=$(cat /proc/sys/kernel/random/uuid); ROOT_UUID=$(cat /proc/sys/kernel/random/uuid)
BOOTDIR=$(mktemp -d "$OUT/boot.XXXXXX")
mv "$ROOT"/boot/* "$BOOTDIR"/
mkdir -p "$BOOTDIR/grub"
cat >"$BOOTDIR/grub/grub.cfg" <<CFG
set timeout=0
menuentry "Debian" {
  linux /vmlinuz-$KVER root=/dev/mapper/vg-root ro quiet
  initrd /initrd.img-$KVER
}
CFG
L1=$(losetup -f --show -o "$P1" --sizelimit "$P1S" "$DISK"); LOOPS+=("$L1")
mkfs.ext4 -q -U "$BOOT_UUID" -L boot -d "$BOOTDIR" "$L1"
losetup -d "$L1"
LR=$(losetup -f --show -o "$LV_OFF" --sizelimit "$LV_SIZE" "$DISK"); LOOPS=("$LR")
mkfs.ext4 -q -U "$ROOT_UUID" -L root -d "$ROOT" "$LR"
losetup -d "$LR"; LOOPS=()

# The conversion helper: the same system on a plain disk (no LVM of its own, so that a
# guest's volume groups never clash with it), booted with its kernel given to QEMU;
# the network on eth0 (the helper boots with net.ifnames=0).
echo ferry-helper >"$ROOT/etc/hostname"
printf '/dev/vda / ext4 defaults 0 1\n' >"$ROOT/etc/fstab"
printf 'auto lo\niface lo inet loopback\n\nallow-hotplug eth0\niface eth0 inet dhcp\n' >"$ROOT/etc/network/interfaces"
rm -f "$ROOT/etc/udev/rules.d/70-persistent-net.rules"
rm -f "$HELPER/root.raw"
truncate -s 2G "$HELPER/root.raw"
mkfs.ext4 -q -L helper -d "$ROOT" "$HELPER/root.raw"
rm -rf "$BOOTDIR"

# GRUB: the core image (ext2, msdos partitions, linux) finds /boot by its UUID.
GRUB=$(mktemp -d "$OUT/grub.XXXXXX")
printf 'search.fs_uuid %s root\nset prefix=($root)/grub\nconfigfile ($root)/grub/grub.cfg\n' "$BOOT_UUID" >"$GRUB/early.cfg"
# The guest's own GRUB tools (this machine needs none).
"$ROOT/usr/bin/grub-mkimage" -O i386-pc -d "$ROOT/usr/lib/grub/i386-pc" -o "$GRUB/core.img" -c "$GRUB/early.cfg" \
  -p /grub biosdisk part_msdos ext2 search search_fs_uuid configfile normal linux echo
# Embedded as grub-bios-setup would (which insists on probing the device this machine
# boots from): boot.img's code into the MBR (the partition table kept), core.img from
# sector 1, where boot.img's default kernel sector and core.img's default block list
# (sector 2 on, contiguous) already point.
dd if="$ROOT/usr/lib/grub/i386-pc/boot.img" of="$DISK" bs=440 count=1 conv=notrunc status=none
dd if="$GRUB/core.img" of="$DISK" bs=512 seek=1 conv=notrunc status=none
rm -rf "$GRUB"

cat >"$OUT/source.facts" <<FACTS
kernel=$KVER
boot_uuid=$BOOT_UUID
root_uuid=$ROOT_UUID
lv_offset=$LV_OFF
lv_size=$LV_SIZE
FACTS
echo "source disk: $DISK ($KVER, root on vg/root at $LV_OFF)"
