#!/usr/bin/env bash
# bench/chunk_study.sh: ingest time, stored bytes, repo size and dedup per chunk size.
#
# For each chunk size (64K 256K 1M 4M): a fresh repository, then `vmvault ingest` of
# debian-v1, v2, v3 (same --vm) in order. Repeated REPS times (default 3) on fresh
# repositories, chunk sizes interleaved within each repetition. Source images are warm
# in the page cache (read once before the run), so this measures vmvault, not the disk.
#
#   bench/chunk_study.sh            # REPS=3 CHUNK_SIZES="64K 256K 1M 4M" ZSTD_LEVEL=3
#   REPS=2 bench/chunk_study.sh
#
# Writes bench/results/chunk-study-<date>.md. Needs bench/dataset.sh's dataset (built
# if missing). Runs as root.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

REPS=${REPS:-3}
CHUNK_SIZES=${CHUNK_SIZES:-"64K 256K 1M 4M"}
ZSTD_LEVEL=${ZSTD_LEVEL:-3}
VM=debian
WORKDIR="$SCRATCH/chunk-study"

[[ $(id -u) -eq 0 ]] || die "run as root"
need python3:python3 qemu-img:qemu-utils qemu-nbd:qemu-utils
cleanup() { local rc=$?; rm -rf "$WORKDIR"; exit $rc; }
trap cleanup EXIT INT TERM

mkdir -p "$SCRATCH" "$RESULTS"
for v in 1 2 3; do
  [[ -f $CACHE/debian-v$v.raw ]] || { log "dataset missing, running bench/dataset.sh"; "$BENCH_DIR/dataset.sh" >/dev/null; break; }
done
build_vmvault
rm -rf "$WORKDIR"; mkdir -p "$WORKDIR"

log "warming the page cache with the three images"
cat "$CACHE"/debian-v{1,2,3}.raw >/dev/null

declare -A T  # T[cs,v] = "t1 t2 t3"
for rep in $(seq 1 "$REPS"); do
  for cs in $CHUNK_SIZES; do
    repo="$WORKDIR/repo-$cs"
    rm -rf "$repo"
    "$VMVAULT" init --quiet --repo "$repo" --chunk-size "$cs" --zstd-level "$ZSTD_LEVEL" >/dev/null
    for v in 1 2 3; do
      tsec t "$VMVAULT" ingest --quiet --repo "$repo" --file "$CACHE/debian-v$v.raw" --vm "$VM"
      T[$cs,$v]+="$t "
      log "rep $rep chunk $cs v$v: ${t}s"
    done
    # Sizes are deterministic; keep the last repetition's.
    "$VMVAULT" list --quiet --repo "$repo" --json >"$WORKDIR/list-$cs.json"
    du -sb "$repo" | cut -f1 >"$WORKDIR/dusb-$cs"
    du -s -B1 "$repo" | cut -f1 >"$WORKDIR/dus-$cs"
    rm -rf "$repo"
  done
done

for cs in $CHUNK_SIZES; do
  for v in 1 2 3; do export "T_${cs}_${v}=${T[$cs,$v]}"; done
done
DATE=$(date -u +%F)
OUT=$(result_path "chunk-study-$DATE")
{
  echo "# Chunk-size study, $DATE"
  echo
  machine_md
  echo
  echo "Dataset (bench/dataset.sh): debian-v1/v2/v3.raw, 4 GiB raw GPT disks, ext4 at 1 MiB;"
  echo "v2 and v3 each change ~3-4% of the disk (apt-get install, logs, new/deleted files)."
  echo '```'
  sed 's/^/  /' "$CACHE/dataset.txt" 2>/dev/null || true
  echo '```'
  echo
  echo "Per chunk size, $REPS repetitions on fresh repositories (zstd level $ZSTD_LEVEL),"
  echo "source images warm in the page cache. Times are medians of wall seconds."
  echo
  python3 - "$WORKDIR" "$REPS" $CHUNK_SIZES <<'PY'
import json, statistics, sys, os
wd, reps, sizes = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def parse(s): return int(s[:-1]) * {"K": 1 << 10, "M": 1 << 20}[s[-1]]
def mib(x): return f"{x / 2**20:.1f}"
rows = []
for cs in sizes:
    d = json.load(open(f"{wd}/list-{cs}.json"))
    backups = d[0]["backups"]
    assert len(backups) == 3, f"{cs}: {len(backups)} backups"
    alloc = sum(b["allocated_bytes"] for b in backups)
    new = [b["new_stored_bytes"] for b in backups]
    data_chunks = sum(dk["data_chunks"] for b in backups for dk in b["disks"])
    new_chunks = sum(dk["new_chunks"] for b in backups for dk in b["disks"])
    times = [os.environ.get(f"T_{cs}_{v}", "").split() for v in (1, 2, 3)]
    med = [statistics.median(float(x) for x in t) for t in times]
    dusb = int(open(f"{wd}/dusb-{cs}").read()); dus = int(open(f"{wd}/dus-{cs}").read())
    rows.append((cs, med, times, new, sum(new), dusb, dus, new_chunks, data_chunks, alloc))
print("| chunk | ingest v1 s | v2 s | v3 s | v1 MiB/s alloc | new stored v1 MiB | v2 MiB | v3 MiB "
      "| stored total MiB | repo du -sb MiB | repo du -s MiB | unique chunks | index MiB (data_chunks x 16 B) "
      "| dedup (refs/unique) | reduction alloc/stored |")
print("|" + "---|" * 15)
for cs, med, times, new, tot, dusb, dus, nc, dc, alloc in rows:
    v1alloc = json.load(open(f"{wd}/list-{cs}.json"))[0]["backups"][0]["allocated_bytes"]
    print(f"| {cs} | {med[0]:.2f} | {med[1]:.2f} | {med[2]:.2f} | {v1alloc / 2**20 / med[0]:.0f} "
          f"| {mib(new[0])} | {mib(new[1])} | {mib(new[2])} | {mib(tot)} | {mib(dusb)} | {mib(dus)} "
          f"| {nc} | {dc * 16 / 2**20:.2f} | {dc / nc:.2f} | {alloc / tot:.2f} |")
print()
print("Raw ingest times (s), per version, in run order:")
print()
for cs, med, times, *_ in rows:
    print(f"- {cs}: " + "; ".join(f"v{v + 1} {' '.join(times[v])}" for v in range(3)))
print()
alloc = rows[0][9]
print(f"Allocated bytes of v1+v2+v3 (vmvault's allocated_bytes, summed): {alloc} ({mib(alloc)} MiB).")
PY
  cat <<EOF

Columns: *new stored* is \`new_stored_bytes\` from \`vmvault list --json\` (compressed bytes
of chunks this backup added); *stored total* is their sum. *repo du* is the repository
directory after the three ingests (\`du -sb\` apparent, \`du -s -B1\` allocated; includes
RocksDB WAL/MANIFEST/LOG files). *index* is the logical size of the chunk references,
sum of \`data_chunks\` over the three backups x 16 B (one XXH3-128 id per non-zero slot);
it is an approximation, not a measurement of the RocksDB column family. *dedup* is
referenced data chunks / unique chunks stored; *reduction* is allocated bytes of the
three versions / stored total (dedup and zstd together).

Commands (per chunk size CS, repeated $REPS times, fresh repo each time):
\`\`\`
$VMVAULT init --quiet --repo REPO --chunk-size CS --zstd-level $ZSTD_LEVEL
$VMVAULT ingest --quiet --repo REPO --file $CACHE/debian-v1.raw --vm $VM   # timed
$VMVAULT ingest --quiet --repo REPO --file $CACHE/debian-v2.raw --vm $VM   # timed
$VMVAULT ingest --quiet --repo REPO --file $CACHE/debian-v3.raw --vm $VM   # timed
$VMVAULT list --quiet --repo REPO --json
du -sb REPO; du -s -B1 REPO
\`\`\`
Script: \`bench/chunk_study.sh\` (REPS=$REPS CHUNK_SIZES="$CHUNK_SIZES").
EOF
} > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
log "wrote $OUT"
