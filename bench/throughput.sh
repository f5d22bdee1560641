#!/usr/bin/env bash
# bench/throughput.sh: vmvault ingest and FUSE read speed against cat, zstd, xxh128sum.
#
# On debian-v1 (4 GiB virtual, raw and qcow2), in one run, REPS times (default 3),
# peers and vmvault interleaved in each repetition:
#   cat raw (cold: page cache dropped; warm), zstd -T1 -3 raw, xxh128sum raw (warm),
#   vmvault ingest raw / qcow2 into a fresh repository (default chunk size; warm source),
#   the mounted raw view: fresh mount + dropped caches, then dd bs=1M (cold) and dd again
#   (warm); then a fresh mount + dropped caches, cat (cold) and cat again (warm).
# Speeds are MiB/s of the 4 GiB virtual size (what the command reads or serves); ingest
# is also given per allocated byte. Ratios are against cat of the raw image in the same
# cache state (cold vs cold, warm vs warm), computed from medians.
#
#   bench/throughput.sh             # REPS=3 CHUNK_SIZE=(repository default)
#   REPS=2 CHUNK_SIZE=256K bench/throughput.sh
#
# Writes bench/results/throughput-<date>.md. Runs as root (drops the page cache).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

REPS=${REPS:-3}
CHUNK_SIZE=${CHUNK_SIZE:-}
WORKDIR="$SCRATCH/throughput"
RAW="$CACHE/debian-v1.raw"
QCOW="$CACHE/debian-v1.qcow2"

[[ $(id -u) -eq 0 ]] || die "run as root"
need python3:python3 zstd:zstd xxh128sum:xxhash fusermount3:fuse3 qemu-img:qemu-utils
cleanup() { local rc=$?; unmount_all; rm -rf "$WORKDIR"; exit $rc; }
trap cleanup EXIT INT TERM

mkdir -p "$SCRATCH" "$RESULTS"
[[ -f $RAW && -f $QCOW ]] || { log "dataset missing, running bench/dataset.sh"; "$BENCH_DIR/dataset.sh" >/dev/null; }
build_vmvault
rm -rf "$WORKDIR"; mkdir -p "$WORKDIR"

SIZE=$(stat -c %s "$RAW")
init_args=(); [[ -n $CHUNK_SIZE ]] && init_args=(--chunk-size "$CHUNK_SIZE")
VIEW=debian/latest/debian-v1.raw

declare -A T FAIL
add() { T[$1]+="$2 "; log "rep $rep $1: $2 s"; }

for rep in $(seq 1 "$REPS"); do
  drop_caches
  tsec t sh -c "cat '$RAW' >/dev/null";                         add cat_cold "$t"
  tsec t sh -c "cat '$RAW' >/dev/null";                         add cat_warm "$t"
  tsec t sh -c "zstd -q -T1 -3 -c '$RAW' >/dev/null";           add zstd "$t"
  tsec t sh -c "xxh128sum '$RAW' >/dev/null 2>&1";              add xxh128 "$t"

  for src in raw qcow2; do
    repo="$WORKDIR/repo-$src"; rm -rf "$repo"
    "$VMVAULT" init --quiet --repo "$repo" "${init_args[@]}" >/dev/null
    f=$RAW; [[ $src == qcow2 ]] && f=$QCOW
    cat "$f" >/dev/null   # warm source, as for the peers
    tsec t "$VMVAULT" ingest --quiet --repo "$repo" --file "$f" --vm debian
    add "ingest_$src" "$t"
    [[ $src == qcow2 ]] && rm -rf "$repo"
  done
  repo="$WORKDIR/repo-raw"
  "$VMVAULT" list --quiet --repo "$repo" --json >"$WORKDIR/list.json"

  for reader in dd cat; do
    mnt="$WORKDIR/mnt-$reader"
    mount_repo "$repo" "$mnt" "$VIEW"
    drop_caches
    for state in cold warm; do
      if [[ $reader == dd ]]; then
        cmd="dd if='$mnt/$VIEW' of=/dev/null bs=1M status=none"
      else
        cmd="cat '$mnt/$VIEW' >/dev/null"
      fi
      if tsec t sh -c "$cmd 2>>'$WORKDIR/errors'"; then
        add "mount_${reader}_$state" "$t"
      else   # keep going: record the failure and what the mount said
        FAIL[mount_${reader}_$state]+="rep$rep "
        [[ $state == cold ]] && FAIL[mount_${reader}_warm]+="rep$rep(skipped) "
        log "rep $rep mount_${reader}_$state FAILED: $(tail -1 "$WORKDIR/errors"); mount: $(tail -1 "$mnt.log")"
        sed "s/^/rep $rep $reader $state: /" "$mnt.log" >>"$WORKDIR/mount-failures"
        break
      fi
    done
    if [[ $rep == 1 && $reader == dd && -z ${FAIL[mount_dd_cold]:-}${FAIL[mount_dd_warm]:-} ]]; then
      # correctness check, untimed
      [[ $(xxh128sum <"$mnt/$VIEW" | cut -d' ' -f1) == $(xxh128sum <"$RAW" | cut -d' ' -f1) ]] \
        || die "mounted view differs from $RAW"
    fi
    unmount_all
  done
  rm -rf "$repo"
done

for k in "${!T[@]}"; do export "T_$k=${T[$k]}"; done
for k in "${!FAIL[@]}"; do export "FAIL_$k=${FAIL[$k]}"; done
DATE=$(date -u +%F)
OUT=$(result_path "throughput-$DATE")
{
  echo "# Throughput, $DATE"
  echo
  machine_md
  echo
  echo "Input: $RAW ($SIZE bytes virtual), $QCOW. Chunk size: ${CHUNK_SIZE:-repository default}."
  echo "Medians of $REPS runs; MiB/s of the virtual size; ratio = speed / speed of \`cat\` of the raw image in the same cache state."
  echo
  python3 - "$SIZE" "$WORKDIR/list.json" "$REPS" <<'PY'
import json, os, statistics, sys
size, reps = int(sys.argv[1]), int(sys.argv[3])
b = json.load(open(sys.argv[2]))[0]["backups"][0]
alloc = b["allocated_bytes"]; cs = b["disks"][0]["chunk_size"]
T = {k[2:]: [float(x) for x in v.split()] for k, v in os.environ.items() if k.startswith("T_")}
med = {k: statistics.median(v) for k, v in T.items()}
rows = [
  ("cat_cold", "`cat raw` (cold)", "cat_cold"),
  ("cat_warm", "`cat raw` (warm)", "cat_warm"),
  ("zstd", "`zstd -T1 -3 -c raw` (warm)", "cat_warm"),
  ("xxh128", "`xxh128sum raw` (warm)", "cat_warm"),
  ("ingest_raw", "`vmvault ingest` raw (warm source)", "cat_warm"),
  ("ingest_qcow2", "`vmvault ingest` qcow2 (warm source)", "cat_warm"),
  ("mount_dd_cold", "mount: `dd bs=1M` raw view, fresh mount, cold", "cat_cold"),
  ("mount_dd_warm", "mount: `dd bs=1M` raw view, 2nd read", "cat_warm"),
  ("mount_cat_cold", "mount: `cat` raw view, fresh mount, cold", "cat_cold"),
  ("mount_cat_warm", "mount: `cat` raw view, 2nd read", "cat_warm"),
]
print("| what | median s | MiB/s (4 GiB virtual) | MiB/s (allocated) | ratio vs cat | runs (s) |")
print("|---|---|---|---|---|---|")
fail = {k[5:]: v.split() for k, v in os.environ.items() if k.startswith("FAIL_")}
for k, label, peer in rows:
    if k in fail:
        ok = " ".join(f"{x:.2f}" for x in T.get(k, []))
        print(f"| {label} | FAILED in {len(fail[k])}/{reps} runs ({' '.join(fail[k])}) | | | | {ok} |")
        continue
    if k not in med: continue
    m = med[k]; sp = size / 2**20 / m
    al = f"{alloc / 2**20 / m:.0f}" if k.startswith("ingest") else ""
    ratio = (size / m) / (size / med[peer])
    print(f"| {label} | {m:.2f} | {sp:.0f} | {al} | {ratio:.2f} x cat {peer[4:]} | {' '.join(f'{x:.2f}' for x in T[k])} |")
print()
print(f"Allocated bytes of debian-v1 (vmvault allocated_bytes): {alloc} ({alloc / 2**20:.0f} MiB); "
      f"chunk size {cs}; stored {b['new_stored_bytes'] / 2**20:.0f} MiB.")
PY
  if [[ -s $WORKDIR/mount-failures ]]; then
    echo
    echo "Mount failures (the mount's own output):"
    echo '```'
    sort -u "$WORKDIR/mount-failures" | head -20
    echo '```'
  fi
  cat <<EOF

Commands (each repetition, in this order; "drop" = \`sync; echo 3 > /proc/sys/vm/drop_caches\`):
\`\`\`
drop; cat $RAW > /dev/null                       # cat cold
cat $RAW > /dev/null                             # cat warm
zstd -q -T1 -3 -c $RAW > /dev/null
xxh128sum $RAW > /dev/null
$VMVAULT init --quiet --repo R ${init_args[*]}
$VMVAULT ingest --quiet --repo R --file $RAW --vm debian       # and the same with $QCOW into a fresh repo
$VMVAULT mount --repo R MNT -f &                 # fresh mount, then drop
dd if=MNT/$VIEW of=/dev/null bs=1M status=none   # cold, then again: warm
fusermount3 -u MNT
$VMVAULT mount --repo R MNT -f &                 # fresh mount, then drop
cat MNT/$VIEW > /dev/null                        # cold, then again: warm
fusermount3 -u MNT
\`\`\`
Timing: wall clock around each command (\`date +%s.%N\`). Script: \`bench/throughput.sh\` (REPS=$REPS).
EOF
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
log "wrote $OUT"
