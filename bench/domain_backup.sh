#!/usr/bin/env bash
# bench/domain_backup.sh: backups of a running libvirt domain, full against incremental,
# and what each --method costs the guest.
#
# The domain is a TCG guest (no KVM needed) whose only disk is a copy of debian-v1.qcow2
# (bench/dataset.sh: 4 GiB virtual, about 1.24 GB of data). It runs no OS (the dataset
# has no boot loader), so the only writes to its disk are the ones made here, through
# its own QEMU (the monitor's qemu-io), while it runs.
#
# REPS times (default 3), each with a fresh copy of the disk and a fresh repository:
#   1. full:        `vmvault ingest --domain D` (pull backup, the first: reads all data)
#   2. the guest writes DIRTY_MIB (default 40, about 3% of the data) in 1 MiB writes at
#      spread offsets, plus 256 scattered 4 KiB writes
#   3. incremental: `vmvault ingest --domain D` (reads only the dirty extents)
#   4. snapshot:    `vmvault ingest --domain D --method snapshot`
#   5. pause:       `vmvault ingest --domain D --method pause`
# Each ingest's wall time is measured around the command; bytes read and the guest
# pause are the ones vmvault recorded (`vmvault list --json`). The page cache is dropped
# before each ingest. The peer is `cat` of the disk file (cold), measured in the same rep.
#
#   bench/domain_backup.sh
#   REPS=5 DIRTY_MIB=100 bench/domain_backup.sh
#
# Uses the libvirtd that answers on qemu:///system, or starts one (and virtlogd) and
# stops it by PID at the end. Writes bench/results/domain-backup-<date>.md. Root only.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

REPS=${REPS:-3}
DIRTY_MIB=${DIRTY_MIB:-40}
IMAGE="$CACHE/debian-v1.qcow2"
URI=qemu:///system
[[ $(id -u) -eq 0 ]] || die "run as root (libvirtd, drops the page cache)"
need python3:python3 virsh:libvirt-clients libvirtd:libvirt-daemon-system \
  qemu-system-x86_64:qemu-system-x86
[[ -f $IMAGE ]] || { log "dataset missing, running bench/dataset.sh"; "$BENCH_DIR/dataset.sh" >/dev/null; }
mkdir -p "$SCRATCH" "$RESULTS"
build_vmvault
WORKDIR=$(mktemp -d "$SCRATCH/domain.XXXXXX")
chmod 0755 "$WORKDIR"  # libvirt-qemu must reach the disk
DOM="vvbench-$$"
DAEMON_PIDS=()

virsh_() { virsh -q -c "$URI" "$@"; }
cleanup() {
  virsh_ destroy "$DOM" >/dev/null 2>&1 || true
  virsh_ undefine "$DOM" --checkpoints-metadata >/dev/null 2>&1 || true
  local p
  for p in "${DAEMON_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${DAEMON_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
  done
  rm -rf "$WORKDIR"
}
trap cleanup EXIT

if ! virsh_ version >/dev/null 2>&1; then
  log "starting virtlogd and libvirtd"
  chgrp kvm /dev/kvm 2>/dev/null && chmod 0660 /dev/kvm 2>/dev/null || true
  virtlogd -d -p "$WORKDIR/virtlogd.pid"
  libvirtd -d --pid-file="$WORKDIR/libvirtd.pid"
  for _ in $(seq 300); do virsh_ version >/dev/null 2>&1 && break; sleep 0.1; done
  DAEMON_PIDS=("$(cat "$WORKDIR/libvirtd.pid")" "$(cat "$WORKDIR/virtlogd.pid")")
fi

DISK="$WORKDIR/disk.qcow2"
cat >"$WORKDIR/dom.xml" <<EOF
<domain type='qemu'>
  <name>$DOM</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='$DISK'/><target dev='vda' bus='virtio'/></disk>
    <memballoon model='none'/>
  </devices>
</domain>
EOF

# The guest's writes, through its own QEMU: DIRTY_MIB MiB in 1 MiB writes spread over
# the disk, and 256 4 KiB writes. Pattern = the rep number, so each rep differs.
guest_writes() {
  local rep=$1 size i off
  size=$(qemu-img info --output=json "$IMAGE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
  for ((i = 0; i < DIRTY_MIB; i++)); do
    off=$(( (i * 2654435761 % (size / 1048576 - 1)) * 1048576 ))
    virsh_ qemu-monitor-command "$DOM" --hmp \
      "qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend \"write -P $((rep + 1)) $off 1M\"" >/dev/null
  done
  for ((i = 0; i < 256; i++)); do
    off=$(( (i * 40503 * 7919 % (size / 4096)) * 4096 ))
    virsh_ qemu-monitor-command "$DOM" --hmp \
      "qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend \"write -P $((rep + 1)) $off 4k\"" >/dev/null
  done
}

# ingest REP LABEL [args...]: one timed ingest; appends "label wall bytes_read pause_s
# read_mode" to results.txt.
ingest() {
  local rep=$1 label=$2 t state; shift 2
  drop_caches
  tsec t "$VMVAULT" ingest --quiet --repo "$WORKDIR/repo" --domain "$DOM" \
    --work-dir "$WORKDIR" "$@"
  state=$(virsh_ domstate "$DOM" | xargs)
  [[ $state == running ]] || die "domain is $state after the $label backup"
  "$VMVAULT" list --repo "$WORKDIR/repo" --json | python3 -c '
import json, sys
label, wall = sys.argv[1], sys.argv[2]
b = [v for v in json.load(sys.stdin) if v["name"] == sys.argv[3]][0]["backups"][-1]
d = b["disks"][0]
print(label, wall, d["bytes_read"], b.get("pause_s", 0), d.get("read_mode", "full"), b["method"])
' "$label" "$t" "$DOM" >>"$WORKDIR/results.txt"
  log "rep $rep $label: $(tail -1 "$WORKDIR/results.txt")"
}

for rep in $(seq 1 "$REPS"); do
  rm -rf "$WORKDIR/repo"
  cp --sparse=always "$IMAGE" "$DISK"
  "$VMVAULT" init --quiet --repo "$WORKDIR/repo"
  virsh_ define "$WORKDIR/dom.xml" >/dev/null
  virsh_ start "$DOM" >/dev/null
  drop_caches
  tsec t sh -c "cat '$DISK' >/dev/null"
  echo "cat $t $(stat -c %s "$DISK") 0 - -" >>"$WORKDIR/results.txt"
  ingest "$rep" full
  tsec w guest_writes "$rep"
  log "rep $rep: guest wrote $DIRTY_MIB MiB + 1 MiB in 4 KiB writes ($w s)"
  ingest "$rep" incremental
  ingest "$rep" snapshot --method snapshot
  ingest "$rep" pause --method pause
  virsh_ destroy "$DOM" >/dev/null
  virsh_ undefine "$DOM" --checkpoints-metadata >/dev/null
done

OUT=$(result_path "domain-backup-$(date +%F)")
python3 - "$WORKDIR/results.txt" "$REPS" "$DIRTY_MIB" >"$WORKDIR/table.md" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
reps, dirty = int(sys.argv[2]), int(sys.argv[3])
def med(label, i):
    return statistics.median(float(r[i]) for r in rows if r[0] == label)
full_t, full_b = med("full", 1), med("full", 2)
print(f"| backup | --method | wall s (median of {reps}) | bytes read (median) | vs full: time | vs full: bytes | guest pause s | read mode |")
print("|---|---|---|---|---|---|---|---|")
for label in ["full", "incremental", "snapshot", "pause"]:
    rs = [r for r in rows if r[0] == label]
    t, b, p = med(label, 1), med(label, 2), med(label, 3)
    print(f"| {label} | {rs[0][5]} | {t:.2f} | {b/1e6:.1f} MB | {t/full_t:.3f} | {b/full_b:.4f} | {p:.2f} | {rs[0][4]} |")
ct, cb = med("cat", 1), med("cat", 2)
print(f"| peer: `cat` of the disk file (cold) | | {ct:.2f} | {cb/1e6:.1f} MB | {ct/full_t:.3f} | | | |")
print()
print(f"The guest dirtied {dirty} MiB in 1 MiB writes plus 256 x 4 KiB "
      f"= {(dirty * 2**20 + 256 * 4096)/1e6:.1f} MB between the full and the incremental backup.")
print("Guest pause: what vmvault recorded (pause_us); `backup` and `snapshot` never suspend the guest.")
EOF
{
  echo "# Backups of a running libvirt domain ($(date +%F))"
  echo
  echo "Command: \`REPS=$REPS DIRTY_MIB=$DIRTY_MIB bench/domain_backup.sh\`"
  echo
  machine_md
  echo "- domain: TCG (qemu), 256 MiB, disk: debian-v1.qcow2 ($(qemu-img info --output=json "$IMAGE" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["virtual-size"]//2**30, "GiB virtual")'), $(du -b "$IMAGE" | cut -f1) bytes of file)"
  echo
  cat "$WORKDIR/table.md"
  echo
  echo "Raw rows (label wall_s bytes_read pause_s read_mode method):"
  echo
  echo '```'
  cat "$WORKDIR/results.txt"
  echo '```'
} >"$OUT"
cat "$OUT"
log "wrote $OUT"
