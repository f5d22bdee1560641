#!/usr/bin/env bash
# The main job on a small sample: make a VM disk (an MBR partition holding an ext4
# filesystem with files, as qcow2), ingest it, mount the repository, print the tree,
# read a file of the guest filesystem through the mounted partition file, and check the
# qcow2 view with qemu-img.
set -euo pipefail
cd "$(dirname "$0")/.."
vmvault="$PWD/build/release/tools/vmvault"
work="${VMVAULT_DEMO_DIR:-$PWD/build/demo}"
export VMVAULT_REPO="$work/repo"

rm -rf "$work"
mkdir -p "$work/guest/etc" "$work/guest/home/alice" "$work/mnt"
echo "demo-vm" > "$work/guest/etc/hostname"
echo "Hello from inside the guest filesystem." > "$work/guest/home/alice/hello.txt"
head -c 8M /dev/urandom > "$work/guest/home/alice/data.bin"

# A 64 MiB disk: MBR, one Linux partition from 1 MiB, ext4 made from the folder.
truncate -s 63M "$work/part.ext4"
mkfs.ext4 -q -F -L demo -d "$work/guest" "$work/part.ext4"
truncate -s 64M "$work/disk.raw"
echo 'start=2048, type=83' | sfdisk -q "$work/disk.raw"
dd if="$work/part.ext4" of="$work/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
qemu-img convert -O qcow2 "$work/disk.raw" "$work/demo-vm.qcow2"
rm "$work/part.ext4" "$work/disk.raw"

"$vmvault" init
"$vmvault" ingest --file "$work/demo-vm.qcow2" --vm demo-vm --tier hot
"$vmvault" list
"$vmvault" mount "$work/mnt"
trap 'fusermount3 -u "$work/mnt" 2>/dev/null || true' EXIT

echo "--- the mounted tree:"
find "$work/mnt" | sed "s|$work/mnt|.|" | sort
backup="$work/mnt/demo-vm/latest"
echo "--- /home/alice/hello.txt, read from the guest filesystem in $backup/demo-vm.part1.raw:"
# debugfs reads the ext4 filesystem of the partition file; no root or loop device needed.
debugfs -R "cat /home/alice/hello.txt" "$backup/demo-vm.part1.raw" 2>/dev/null
echo "--- qemu-img check and compare of the qcow2 view:"
qemu-img check -f qcow2 "$backup/demo-vm.qcow2"
qemu-img compare -f raw -F qcow2 "$backup/demo-vm.raw" "$backup/demo-vm.qcow2"
