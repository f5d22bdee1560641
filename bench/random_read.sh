#!/usr/bin/env bash
# bench/random_read.sh: random 4 KiB reads through the mounted raw view, with fio.
#
# On debian-v1 (bench/dataset.sh), ingested into a fresh repository (default chunk
# size unless CHUNK_SIZE): REPS times (default 3), a fresh mount, dropped page cache,
# then `fio --rw=randread --bs=4k --ioengine=psync --iodepth=1` for RUNTIME seconds
# (default 20) over the first 1300 MiB of the disk, where its data lives. Prints IOPS,
# p50 and p99 completion latency and the mount's RSS after the run; medians.
#
#   bench/random_read.sh
#   REPS=5 RUNTIME=30 CHUNK_SIZE=1M bench/random_read.sh
#
# Writes bench/results/random-read-<date>.md. Runs as root (drops the page cache).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
REPS=${REPS:-3}
RUNTIME=${RUNTIME:-20}
CHUNK_SIZE=${CHUNK_SIZE:-}

[[ $(id -u) -eq 0 ]] || die "run as root (drops the page cache)"
need fio:fio python3:python3
RAW="$CACHE/debian-v1.raw"
[[ -f $RAW ]] || die "no dataset: run bench/dataset.sh first"
mkdir -p "$SCRATCH" "$RESULTS"
build_vmvault
WORKDIR=$(mktemp -d "$SCRATCH/random-read.XXXXXX")
trap 'unmount_all; rm -rf "$WORKDIR"' EXIT

init_args=(); [[ -n $CHUNK_SIZE ]] && init_args=(--chunk-size "$CHUNK_SIZE")
"$VMVAULT" init --quiet --repo "$WORKDIR/repo" "${init_args[@]}"
"$VMVAULT" ingest --quiet --repo "$WORKDIR/repo" --file "$RAW" --vm debian
VIEW="debian/latest/debian-v1.raw"

iops=(); p50=(); p99=(); rss=()
for rep in $(seq 1 "$REPS"); do
  mount_repo "$WORKDIR/repo" "$WORKDIR/mnt" "$VIEW"
  drop_caches
  fio --name=rr --filename="$WORKDIR/mnt/$VIEW" --rw=randread --bs=4k --ioengine=psync \
    --iodepth=1 --runtime="$RUNTIME" --time_based --offset=1M --size=1300M \
    --output-format=json >"$WORKDIR/fio.json" 2>/dev/null
  read -r i a b < <(python3 - "$WORKDIR/fio.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["jobs"][0]["read"]
p = r["clat_ns"]["percentile"]
print(round(r["iops"]), p["50.000000"] / 1e6, p["99.000000"] / 1e6)
PY
)
  iops+=("$i"); p50+=("$a"); p99+=("$b")
  rss+=("$(($(ps -o rss= -p "${MOUNT_PIDS[-1]}") / 1024))")
  log "rep $rep: $i IOPS, p50 $a ms, p99 $b ms, mount RSS ${rss[-1]} MiB"
  unmount_all
done

out=$(result_path "random-read-$(date +%F)")
{
  echo "# Random 4 KiB reads through the mount, $(date +%F)"
  echo
  machine_md
  echo
  echo "Input: $RAW. Chunk size: ${CHUNK_SIZE:-repository default}. Medians of $REPS runs."
  echo
  echo "| IOPS | p50 ms | p99 ms | mount RSS MiB | runs (IOPS / p99 ms) |"
  echo "|---|---|---|---|---|"
  echo "| $(median "${iops[@]}") | $(median "${p50[@]}") | $(median "${p99[@]}") | $(median "${rss[@]}") | ${iops[*]} / ${p99[*]} |"
  echo
  echo "Commands (each repetition):"
  echo '```'
  echo "$VMVAULT mount --repo R MNT -f &; sync; echo 3 > /proc/sys/vm/drop_caches"
  echo "fio --name=rr --filename=MNT/$VIEW --rw=randread --bs=4k --ioengine=psync --iodepth=1 --runtime=$RUNTIME --time_based --offset=1M --size=1300M"
  echo '```'
  echo "Script: \`bench/random_read.sh\` (REPS=$REPS RUNTIME=$RUNTIME)."
} >"$out"
cat "$out"
log "wrote $out"
