#!/usr/bin/env bash
# bench/views.sh: the mount's disk views side by side, in one run.
#
# Part 1, sequential reads. debian-v1 (bench/dataset.sh) is ingested once (default
# chunk size unless CHUNK_SIZE). REPS times (default 3), for each view in turn -- raw,
# qcow2, vhdx, and the root partition -- a fresh mount, dropped page cache, then
# `dd bs=1M` of the whole file; `cat` of the source raw image (cold) is the peer,
# measured in the same repetition. MiB/s are of the bytes each file holds. Every file
# but the partition holds all of the disk's data -- the raw view with its holes as
# zeros, the qcow2 and VHDX files densely -- so their times compare directly.
#
# Part 2, cost before the first byte. A 1 TiB sparse raw disk holding 1 GiB of data
# (four 256 MiB stretches of random bytes at 0, 300 GiB, 600 GiB and 1 TiB - 256 MiB)
# is ingested. REPS times: a fresh mount and dropped caches, then (timed in-process,
# python perf_counter) `ls -l` of the backup directory (readdir + stat of every view),
# and the first 4 KiB read of each view at offset 0 and at a data offset (the middle
# of the file for qcow2/VHDX, 600 GiB for the raw view).
#
#   bench/views.sh
#   REPS=5 CHUNK_SIZE=1M bench/views.sh
#
# Writes bench/results/views-<date>.md. Runs as root (drops the page cache).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

REPS=${REPS:-3}
CHUNK_SIZE=${CHUNK_SIZE:-}
RAW="$CACHE/debian-v1.raw"
[[ $(id -u) -eq 0 ]] || die "run as root (drops the page cache)"
need python3:python3 fusermount3:fuse3
[[ -f $RAW ]] || { log "dataset missing, running bench/dataset.sh"; "$BENCH_DIR/dataset.sh" >/dev/null; }
mkdir -p "$SCRATCH" "$RESULTS"
build_vmvault
WORKDIR=$(mktemp -d "$SCRATCH/views.XXXXXX")
trap 'unmount_all; rm -rf "$WORKDIR"' EXIT

init_args=(); [[ -n $CHUNK_SIZE ]] && init_args=(--chunk-size "$CHUNK_SIZE")
"$VMVAULT" init --quiet --repo "$WORKDIR/repo" "${init_args[@]}"
"$VMVAULT" ingest --quiet --repo "$WORKDIR/repo" --file "$RAW" --vm debian
DIR=debian/latest
# The largest partition is the root filesystem.
PART=$(cd "$WORKDIR" && mkdir -p probe && "$VMVAULT" mount --repo repo probe &&
       ls -S probe/$DIR | grep -m1 '\.part[0-9]*\.raw$'; fusermount3 -u probe)
VIEWS=(debian-v1.raw debian-v1.qcow2 debian-v1.vhdx "$PART")
declare -A SIZE
for rep in $(seq 1 "$REPS"); do
  drop_caches
  tsec t sh -c "cat '$RAW' >/dev/null"
  echo "cat $t $(stat -c %s "$RAW")" >>"$WORKDIR/seq.txt"; log "rep $rep cat raw: $t s"
  for v in "${VIEWS[@]}"; do
    mount_repo "$WORKDIR/repo" "$WORKDIR/mnt" "$DIR/$v"
    SIZE[$v]=$(stat -c %s "$WORKDIR/mnt/$DIR/$v")
    drop_caches
    tsec t dd if="$WORKDIR/mnt/$DIR/$v" of=/dev/null bs=1M status=none
    echo "$v $t ${SIZE[$v]}" >>"$WORKDIR/seq.txt"; log "rep $rep $v: $t s"
    unmount_all
  done
done

# Part 2: a 1 TiB disk with 1 GiB of data.
BIG="$WORKDIR/big.raw"
truncate -s 1T "$BIG"
for off_mib in 0 $((300 << 10)) $((600 << 10)) $(((1 << 20) - 256)); do
  head -c 256M /dev/urandom | dd of="$BIG" bs=1M seek="$off_mib" conv=notrunc,sparse status=none
done
"$VMVAULT" init --quiet --repo "$WORKDIR/big-repo" "${init_args[@]}"
tsec t_big "$VMVAULT" ingest --quiet --repo "$WORKDIR/big-repo" --file "$BIG" --vm big
rm -f "$BIG"
LAT=()
for rep in $(seq 1 "$REPS"); do
  mount_repo "$WORKDIR/big-repo" "$WORKDIR/mnt" "big/latest/big.raw"
  drop_caches
  LAT+=("$(python3 - "$WORKDIR/mnt/big/latest" <<'PY'
import os, sys, time, json
d = sys.argv[1]
out = {}
t = time.perf_counter()
names = os.listdir(d)
for n in names: os.lstat(os.path.join(d, n))
out["ls -l"] = time.perf_counter() - t
for n in sorted(names):
    if n == "manifest.json": continue
    p = os.path.join(d, n)
    size = os.stat(p).st_size
    for label, off in (("at 0", 0), ("in data", (600 << 30) if n.endswith(".raw") else size // 2)):
        t = time.perf_counter()
        fd = os.open(p, os.O_RDONLY)
        os.pread(fd, 4096, off)
        os.close(fd)
        out[f"{n} first read {label}"] = time.perf_counter() - t
print(json.dumps(out))
PY
)")
  log "rep $rep: ${LAT[-1]}"
  unmount_all
done

OUT=$(result_path "views-$(date +%F)")
{
  echo "# Disk views, $(date +%F)"
  echo
  machine_md
  echo
  echo "Chunk size: ${CHUNK_SIZE:-repository default}. Medians of $REPS runs."
  echo
  echo "## Sequential read of each view (debian-v1: 4 GiB virtual)"
  echo
  python3 - "$WORKDIR/seq.txt" "${VIEWS[@]}" <<'PY'
import statistics, sys
T, S = {}, {}
for line in open(sys.argv[1]):
    name, t, size = line.split()
    T.setdefault(name, []).append(float(t)); S[name] = int(size)
views = sys.argv[2:]
med = {k: statistics.median(v) for k, v in T.items()}
print("| file | bytes | median s | MiB/s | time / raw view's | runs (s) |")
print("|---|---|---|---|---|---|")
label = {"cat": "`cat` of the source raw image, cold"}
for v in ["cat"] + views:
    ratio = "" if v == "cat" else f"{med[v] / med[views[0]]:.2f}"
    runs = " ".join(f"{x:.2f}" for x in T[v])
    print(f"| {label.get(v, v)} | {S[v]} | {med[v]:.2f} | {S[v] / 2**20 / med[v]:.0f} | {ratio} | {runs} |")
PY
  echo
  echo "## 1 TiB virtual disk holding 1 GiB of data: cost before the first byte"
  echo
  echo "Ingest of the 1 TiB disk: ${t_big} s. Fresh mount and dropped caches before each run; milliseconds."
  echo
  python3 - "${LAT[@]}" <<'PY'
import json, statistics, sys
runs = [json.loads(x) for x in sys.argv[1:]]
print("| what | median ms | runs (ms) |")
print("|---|---|---|")
for k in runs[0]:
    v = [r[k] * 1e3 for r in runs]
    print(f"| {k} | {statistics.median(v):.2f} | {' '.join(f'{x:.2f}' for x in v)} |")
PY
  cat <<EOF2

Commands ("drop" = \`sync; echo 3 > /proc/sys/vm/drop_caches\`):
\`\`\`
$VMVAULT init --quiet --repo R ${init_args[*]}; $VMVAULT ingest --quiet --repo R --file $RAW --vm debian
drop; cat $RAW > /dev/null
$VMVAULT mount --repo R MNT -f &; drop; dd if=MNT/$DIR/VIEW of=/dev/null bs=1M; fusermount3 -u MNT   # per view
truncate -s 1T big.raw; 4 x (head -c 256M /dev/urandom | dd of=big.raw bs=1M seek=S conv=notrunc,sparse)
$VMVAULT ingest --quiet --repo B --file big.raw --vm big
$VMVAULT mount --repo B MNT -f &; drop; python3: listdir + lstat all; per view open + pread 4 KiB + close
\`\`\`
Script: \`bench/views.sh\` (REPS=$REPS).
EOF2
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
log "wrote $OUT"
