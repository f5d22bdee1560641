#!/bin/sh
# Records the qemu-img outputs that qemu_img_test.cc replays. Run from anywhere:
#   tests/ingest/testdata/record.sh
# Each recording is NAME.out (stdout), NAME.err (stderr) and NAME.rc (exit status).
set -u
out=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

rec() {  # rec NAME command...
  name=$1; shift
  "$@" >"$out/$name.out" 2>"$out/$name.err"
  echo $? >"$out/$name.rc"
}

for f in raw qcow2 vmdk vdi vhdx vpc; do
  qemu-img create -q -f $f disk.$f 8M
  qemu-io -f $f -c 'write -P 0xab 1M 3M' disk.$f >/dev/null
  rec info_$f qemu-img info --output=json disk.$f
  rec map_$f qemu-img map --output=json -f $f disk.$f
done
rec check_qcow2 qemu-img check --output=json -f qcow2 disk.qcow2
rec check_vpc qemu-img check --output=json -f vpc disk.vpc

# A qcow2 overlay on a backing file.
qemu-img create -q -f qcow2 -b disk.qcow2 -F qcow2 overlay.qcow2
qemu-io -f qcow2 -c 'write -P 0xcd 6M 64k' overlay.qcow2 >/dev/null
rec info_overlay qemu-img info --output=json overlay.qcow2
rec map_overlay qemu-img map --output=json -f qcow2 overlay.qcow2

# A VMDK chain: a differencing image on a base, mapped on an explicit backing chain.
qemu-img create -q -f vmdk chain-base.vmdk 8M
qemu-io -f vmdk -c 'write -P 0xab 1M 3M' chain-base.vmdk >/dev/null
qemu-img create -q -f vmdk -b chain-base.vmdk -F vmdk chain-top.vmdk
qemu-io -f vmdk -c 'write -P 0xcd 2M 64k' -c 'write -P 0xce 6M 64k' chain-top.vmdk >/dev/null
rec info_vmdk_base qemu-img info --output=json -f vmdk chain-base.vmdk
rec info_vmdk_top qemu-img info --output=json -f vmdk chain-top.vmdk
rec map_vmdk_chain qemu-img map --output=json --image-opts \
  "driver=vmdk,file.driver=file,file.filename=$work/chain-top.vmdk,backing.driver=vmdk,backing.file.driver=file,backing.file.filename=$work/chain-base.vmdk"

# Truncated images.
cp disk.qcow2 trunc.qcow2 && truncate -s 200000 trunc.qcow2
rec check_trunc_qcow2 qemu-img check --output=json -f qcow2 trunc.qcow2
cp disk.vmdk trunc.vmdk && truncate -s 2000000 trunc.vmdk
rec check_trunc_vmdk qemu-img check --output=json -f vmdk trunc.vmdk
cp disk.vdi trunc.vdi && truncate -s 2000000 trunc.vdi
rec map_trunc_vdi qemu-img map --output=json -f vdi trunc.vdi
cp disk.vpc trunc.vpc && truncate -s 2000000 trunc.vpc
rec info_trunc_vpc qemu-img info --output=json trunc.vpc

# A qcow2 whose magic was overwritten probes as raw.
cp disk.qcow2 badmagic.qcow2
printf 'garbagegarbage' | dd of=badmagic.qcow2 conv=notrunc bs=1 seek=0 2>/dev/null
rec info_badmagic qemu-img info --output=json badmagic.qcow2
rec info_badmagic_forced qemu-img info --output=json -f qcow2 badmagic.qcow2

# Encrypted qcow2.
qemu-img create -q -f qcow2 --object secret,id=sec0,data=abc \
  -o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10 enc.qcow2 4M
rec info_encrypted qemu-img info --output=json enc.qcow2

# Missing file and directory.
rec info_missing qemu-img info --output=json /nonexistent/disk.qcow2
mkdir dir
rec info_dir qemu-img info --output=json dir
