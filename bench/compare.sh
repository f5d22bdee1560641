#!/usr/bin/env bash
# bench/compare.sh: vmvault side by side with borg and restic, on the same disks, in one run.
#
# REPS times (default 3), the three tools interleaved in every step (their order rotates
# each repetition), on the bench/dataset.sh disks (debian-v1/v2/v3.raw, 4 GiB each):
#   ingest      v1, v2, v3 in turn into a fresh repository per tool: `vmvault ingest`,
#               `borg create --compression zstd,3` (borg init --encryption=none),
#               `restic backup --compression auto` (repository v2: zstd level 3; restic
#               always encrypts). Wall time, MB/s, peak RSS, CPU, repository bytes after
#               each version. Source warm in the page cache (read once before each ingest),
#               `sync` before each: the figures compare CPU and write paths, not the disk.
#   mount       the latest version through each tool's FUSE mount (`vmvault mount`, `borg
#               mount`, `restic mount`), each time a fresh mount: time to the first 4 KiB
#               (page cache dropped before the mount starts); `dd bs=1M` of the whole file
#               with the page cache dropped (cold), cold with the page cache full of other
#               files (full: the repository evicted, free memory short, as on a server that
#               has run a while), with the repository read into it first (warm repository:
#               CPU-bound), and cold with `iflag=direct` (O_DIRECT: the mount's replies go
#               straight to dd, no page cache); fio random 4 KiB reads (psync, queue
#               depth 1, RUNTIME s) over the disk's first 1300 MiB after 1 MiB (~97 % data)
#               with the page cache dropped; the mount's RSS after the reads. vmvault's raw,
#               qcow2 and VHDX views; borg's and restic's copy of the raw file.
#   restore     to a file, page cache dropped first, `sync` included: `vmvault restore`,
#               `borg extract --sparse`, `restic restore` (0.14 has no --sparse). The
#               first repetition checks each restored file's xxh128 against the source.
#   limits      `cat` of the latest raw file (cold; cold after 20 s idle; cold with the page
#               cache full; warm), `zstd -T1 -3`, `xxh128sum`,
#               `cat` of each repository's files cold (the disk's share of a cold mount).
#   sparse      vmvault ingest of sparse-64g.raw (64 GiB, ~5 GiB of data); borg and restic
#               once too with SPARSE_PEERS=1 (they read all 64 GiB: minutes).
#   growth      vmvault ingest of growth-1t.raw (1 TiB holding 1 GiB) and growth-1g.raw
#               (the same GiB in a 1 GiB disk): the ratio of their times.
# Then a table of medians with every run's values and the targets, met or NOT met.
#
#   bench/compare.sh                         # REPS=3 RUNTIME=20
#   QUICK=1 bench/compare.sh                 # one rep, v1 only, 3 s of fio: checks the script
#   REPS=5 SPARSE_PEERS=1 CHUNK_SIZE=256K bench/compare.sh
#
# MB = 10^6 bytes, MiB = 2^20. Writes bench/results/compare-<date>.md (QUICK: compare-quick-
# <date>.md; -2, -3 ... for later runs of the day). Runs as root (drops the page cache,
# FUSE). Cleans up mounts, repositories and scratch on any exit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

QUICK=${QUICK:-0}
REPS=${REPS:-3}
RUNTIME=${RUNTIME:-20}
SPARSE_PEERS=${SPARSE_PEERS:-0}
CHUNK_SIZE=${CHUNK_SIZE:-}
VERSIONS=(v1 v2 v3)
if [[ $QUICK == 1 ]]; then REPS=1; RUNTIME=3; VERSIONS=(v1); fi
TOOLS=(vmvault borg restic)
WORKDIR="$SCRATCH/compare"
SRC="$WORKDIR/src"          # the path every tool backs up: a hard link to each version
FIO_ARGS=(--rw=randread --bs=4k --ioengine=psync --iodepth=1 --offset=1M --size=1300M)

[[ $(id -u) -eq 0 ]] || die "run as root (drops the page cache, mounts FUSE)"
need python3:python3 zstd:zstd xxh128sum:xxhash fusermount3:fuse3 fusermount:fuse3 \
  qemu-img:qemu-utils fio:fio borg:borgbackup restic:restic /usr/bin/time:time

export BORG_BASE_DIR="$WORKDIR/borg-base" BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes \
  BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_EXIT_CODES=modern
export RESTIC_PASSWORD=vmvault-bench RESTIC_CACHE_DIR="$WORKDIR/restic-cache"

cleanup() {
  local rc=$? f
  for f in "$WORKDIR"/*.pid; do   # mounts started by the first-byte probe
    [[ -f $f ]] || continue
    MOUNT_PIDS+=("$(cat "$f")"); MOUNTS+=("${f%.pid}")
  done
  unmount_all
  rm -rf "$WORKDIR"
  exit $rc
}
trap cleanup EXIT INT TERM

mkdir -p "$SCRATCH" "$RESULTS"
for f in "${VERSIONS[@]/#/debian-}" sparse-64g growth-1t growth-1g; do
  [[ -f $CACHE/$f.raw ]] && continue
  log "dataset missing ($f.raw), running bench/dataset.sh"
  "$BENCH_DIR/dataset.sh" >/dev/null
  break
done
build_vmvault
rm -rf "$WORKDIR"; mkdir -p "$SRC"
START=$(date +%s)
MACHINE=$(machine_md)

# --- measurement helpers -------------------------------------------------------------
OUT_TXT="$WORKDIR/measurements.txt"   # one line a figure: rep section tool item metric value
rec() { echo "$rep $*" >>"$OUT_TXT"; log "rep $rep: $*"; }

# timed SECTION TOOL ITEM CMD...: wall s, peak RSS and CPU of CMD (through /usr/bin/time).
timed() {
  local section=$1 tool=$2 item=$3 t rc=0
  shift 3
  sync
  tsec t /usr/bin/time -f '%M %U %S' -o "$WORKDIR/time.txt" "$@" >>"$WORKDIR/$tool.log" 2>&1 || rc=$?
  if ((rc != 0)); then
    log "rep $rep: $section $tool $item FAILED (exit $rc): $(tail -3 "$WORKDIR/$tool.log")"
    rec "$section" "$tool" "$item" failed 1
    return 1
  fi
  read -r rss user sys <"$WORKDIR/time.txt"
  rec "$section" "$tool" "$item" wall "$t"
  rec "$section" "$tool" "$item" rss_kib "$rss"
  rec "$section" "$tool" "$item" cpu "$(python3 -c "print($user + $sys)")"
}
rss_of() { echo $(($(ps -o rss= -p "$1" 2>/dev/null || echo 0))); }

warm_file() {  # reads FILE's data (not its holes) into the page cache
  python3 - "$1" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
off, size = 0, os.fstat(fd).st_size
while off < size:
    try:
        off = os.lseek(fd, off, os.SEEK_DATA)
    except OSError:  # ENXIO: no data after off
        break
    end = os.lseek(fd, off, os.SEEK_HOLE)
    while off < end:
        off += len(os.pread(fd, min(1 << 20, end - off), off))
PY
}

repo_of() { echo "$WORKDIR/repo-$1"; }
cache_of() {  # the tool's client-side cache, if it has one
  case $1 in borg) echo "$BORG_BASE_DIR" ;; restic) echo "$RESTIC_CACHE_DIR" ;; *) echo "" ;; esac
}

init_repo() {  # init_repo TOOL: a fresh, empty repository (and client cache)
  local r; r=$(repo_of "$1")
  rm -rf "$r" "$(cache_of "$1")"
  case $1 in
    vmvault) "$VMVAULT" init --quiet --repo "$r" "${init_args[@]}" ;;
    borg) borg init --encryption=none "$r" ;;
    restic) restic init --quiet --repository-version 2 --repo "$r" ;;
  esac >>"$WORKDIR/$1.log" 2>&1
}

ingest() {  # ITEM=x ingest TOOL NAME FILE VM: back up FILE, hard-linked as $SRC/NAME
  local tool=$1 name=$2 file=$3 vm=$4 r
  local -a cmd
  r=$(repo_of "$tool")
  ln -f "$file" "$SRC/$name"
  warm_file "$SRC/$name"
  case $tool in
    vmvault) cmd=("$VMVAULT" ingest --quiet --repo "$r" --file "$SRC/$name" --vm "$vm") ;;
    borg) cmd=(borg create --compression "zstd,3" "$r::$vm-$(date +%s%N)" "$SRC/$name") ;;
    restic) cmd=(restic backup --quiet --repo "$r" --compression auto --host bench "$SRC/$name") ;;
  esac
  timed ingest "$tool" "$vm-$ITEM" "${cmd[@]}"
}

# The latest backup of TOOL's repository mounted on MNT, in the foreground.
mount_cmd() {  # mount_cmd TOOL MNT: prints the mount command, one word a line
  local r; r=$(repo_of "$1")
  case $1 in
    vmvault) printf '%s\n' "$VMVAULT" mount --repo "$r" "$2" -f ;;
    borg) printf '%s\n' borg mount -f "$r::$(borg list --short --last 1 "$r")" "$2" ;;
    restic) printf '%s\n' restic mount --repo "$r" "$2" ;;
  esac
}
file_in_mount() {  # file_in_mount TOOL VIEW: where the disk file is below the mountpoint
  case $1 in
    vmvault) echo "debian/latest/$2" ;;
    borg) echo "${SRC#/}/debian.raw" ;;
    restic) echo "snapshots/latest$SRC/debian.raw" ;;
  esac
}
# mount_tool TOOL MNT PATH: a fresh mount, up once MNT/PATH exists (1 if it does not
# come up); the server's PID is MOUNT_PIDS[-1].
mount_tool() {
  local -a cmd
  mapfile -t cmd < <(mount_cmd "$1" "$2")
  mount_fuse "$2" "$3" 120 "${cmd[@]}"
}
warm_repo() {  # read the repository and the tool's cache into the page cache
  local c; c=$(cache_of "$1")
  find "$(repo_of "$1")" ${c:+"$c"} -type f -exec cat {} + >/dev/null
}

# The first 4 KiB (at 1 MiB, the partition's start) after a fresh mount and dropped caches:
# the probe starts the server, waits for the mount and reads; the times are from the
# server's start.
first_byte() {  # first_byte TOOL VIEW
  local tool=$1 mnt="$WORKDIR/mnt-$1" path out
  local -a cmd
  path=$(file_in_mount "$tool" "$2")
  mapfile -t cmd < <(mount_cmd "$tool" "$mnt")
  mkdir -p "$mnt"
  drop_caches
  out=$(python3 - "$mnt" "$path" "${cmd[@]}" <<'PY'
import os, subprocess, sys, time
mnt, path, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
def mounted():
    with open("/proc/mounts") as f:
        return any(line.split()[1] == mnt for line in f)
t0 = time.perf_counter()
p = subprocess.Popen(cmd, stdout=open(mnt + ".log", "w"), stderr=subprocess.STDOUT)
with open(mnt + ".pid", "w") as f:
    f.write(str(p.pid))
while not mounted():
    if p.poll() is not None or time.perf_counter() - t0 > 120:
        sys.exit("the mount did not come up")
    time.sleep(0.002)
t1 = time.perf_counter()
deadline = t1 + 120
while True:  # borg and restic may show the tree a moment after the mount appears
    try:
        fd = os.open(os.path.join(mnt, path), os.O_RDONLY)
        break
    except FileNotFoundError:
        if time.perf_counter() > deadline: raise
        time.sleep(0.002)
data = os.pread(fd, 4096, 1 << 20)
t2 = time.perf_counter()
os.close(fd)
assert len(data) == 4096
print(f"{(t1 - t0) * 1e3:.2f} {(t2 - t1) * 1e3:.2f} {(t2 - t0) * 1e3:.2f}")
PY
) || { log "rep $rep: first byte $tool FAILED: $(tail -3 "$mnt.log")"; rec mount "$tool" "$2" failed 1; }
  if [[ -f $mnt.pid ]]; then MOUNT_PIDS+=("$(cat "$mnt.pid")"); MOUNTS+=("$mnt"); rm -f "$mnt.pid"; fi
  unmount_all
  [[ -n $out ]] || return 0
  read -r up ready first <<<"$out"
  rec mount "$tool" "$2" ttfb_mount_ms "$up"
  rec mount "$tool" "$2" ttfb_ms "$ready"
  rec mount "$tool" "$2" ttfb_total_ms "$first"
}

# mount_or_fail TOOL MNT PATH VIEW: mount_tool, or a recorded failure (the run goes on).
mount_or_fail() {
  mount_tool "$1" "$2" "$3" && return 0
  rec mount "$1" "$4" failed 1
  unmount_all
  return 1
}

seq_read() {  # seq_read TOOL VIEW STATE(cold|full|warm|direct)
  local tool=$1 view=$2 state=$3 mnt="$WORKDIR/mnt-$1" path t flags=() c
  path=$(file_in_mount "$tool" "$view")
  mount_or_fail "$tool" "$mnt" "$path" "$view" || return 0
  if [[ $state == full ]]; then  # cold, the page cache full of other files
    sync
    c=$(cache_of "$tool")
    evict "$(repo_of "$tool")" ${c:+"$c"}
    fill_page_cache
  else
    drop_caches
  fi
  [[ $state == warm ]] && warm_repo "$tool"
  [[ $state == direct ]] && flags=(iflag=direct)  # cold, and around the page cache
  if tsec t dd if="$mnt/$path" of=/dev/null bs=1M "${flags[@]}" status=none 2>>"$WORKDIR/$tool.log"; then
    rec mount "$tool" "$view" "seq_$state" "$t"
    rec mount "$tool" "$view" bytes "$(stat -c %s "$mnt/$path")"
    rec mount "$tool" "$view" "rss_seq_$state" "$(rss_of "${MOUNT_PIDS[-1]}")"
  else
    log "rep $rep: dd $tool $view FAILED: $(tail -3 "$mnt.log")"
    rec mount "$tool" "$view" failed 1
  fi
  unmount_all
}

random_read() {  # random_read TOOL VIEW
  local tool=$1 view=$2 mnt="$WORKDIR/mnt-$1" path
  path=$(file_in_mount "$tool" "$view")
  mount_or_fail "$tool" "$mnt" "$path" "$view" || return 0
  drop_caches
  if fio --name=rr --filename="$mnt/$path" "${FIO_ARGS[@]}" --runtime="$RUNTIME" --time_based \
       --output-format=json >"$WORKDIR/fio.json" 2>>"$WORKDIR/$tool.log"; then
    read -r iops p50 p99 < <(python3 - "$WORKDIR/fio.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["jobs"][0]["read"]
p = r["clat_ns"]["percentile"]
print(round(r["iops"]), p["50.000000"] / 1e6, p["99.000000"] / 1e6)
PY
)
    rec mount "$tool" "$view" iops "$iops"
    rec mount "$tool" "$view" p50_ms "$p50"
    rec mount "$tool" "$view" p99_ms "$p99"
    rec mount "$tool" "$view" rss_random "$(rss_of "${MOUNT_PIDS[-1]}")"
  else
    log "rep $rep: fio $tool FAILED: $(tail -3 "$mnt.log")"
    rec mount "$tool" "$view" failed 1
  fi
  unmount_all
}

restore() {  # restore TOOL: the latest backup to a file; checks it against the source once
  local tool=$1 r out="$WORKDIR/restore-$1" file
  local -a cmd
  r=$(repo_of "$tool")
  rm -rf "$out"; mkdir -p "$out"
  drop_caches
  case $tool in
    vmvault) file="$out/debian.raw"
             cmd=("$VMVAULT" restore --quiet --repo "$r" debian --to "$file") ;;
    borg) file="$out$SRC/debian.raw"
          cmd=(sh -c "cd '$out' && borg extract --sparse '$r::$(borg list --short --last 1 "$r")'") ;;
    restic) file="$out$SRC/debian.raw"
            cmd=(restic restore --quiet --repo "$r" latest --target "$out") ;;
  esac
  # The restore and the writeback of what it wrote: sh -c 'CMD && sync'.
  if timed restore "$tool" "$LATEST" sh -c '"$@" && sync' sh "${cmd[@]}" && ((rep == 1)); then
    local want got
    want=$(xxh128sum <"$CACHE/debian-$LATEST.raw" | cut -d' ' -f1)
    got=$(xxh128sum <"$file" | cut -d' ' -f1)
    [[ $want == "$got" ]] || die "$tool restored $LATEST wrongly: xxh128 $got, source $want"
    rec restore "$tool" "$LATEST" verified 1
  fi
  rm -rf "$out"
}

# --- the run -------------------------------------------------------------------------
init_args=(); [[ -n $CHUNK_SIZE ]] && init_args=(--chunk-size "$CHUNK_SIZE")
LATEST=${VERSIONS[-1]}
SPARSE="$CACHE/sparse-64g.raw"
for rep in $(seq 1 "$REPS"); do
  # This repetition's order of the tools: rotated by one each time.
  k=$(((rep - 1) % ${#TOOLS[@]}))
  order=("${TOOLS[@]:k}" "${TOOLS[@]:0:k}")
  log "rep $rep/$REPS: order ${order[*]}"

  # Limits (peers of the same machine, same repetition).
  drop_caches
  tsec t cat "$CACHE/debian-$LATEST.raw" >/dev/null;  rec limit cat "$LATEST" cold "$t"
  tsec t cat "$CACHE/debian-$LATEST.raw" >/dev/null;  rec limit cat "$LATEST" warm "$t"
  # What the host adds to any reader's page-cache fill: the same cold read after the
  # freed memory had 20 s to go back to the host, and with the page cache full.
  drop_caches; sleep 20
  tsec t cat "$CACHE/debian-$LATEST.raw" >/dev/null;  rec limit cat "$LATEST" idle "$t"
  evict "$CACHE/debian-$LATEST.raw"; fill_page_cache
  tsec t cat "$CACHE/debian-$LATEST.raw" >/dev/null;  rec limit cat "$LATEST" full "$t"
  tsec t zstd -q -T1 -3 -c "$CACHE/debian-$LATEST.raw" >/dev/null 2>&1; rec limit zstd "$LATEST" warm "$t"
  tsec t xxh128sum "$CACHE/debian-$LATEST.raw" >/dev/null 2>&1;  rec limit xxh128sum "$LATEST" warm "$t"

  # Ingest every version, version after version, into a fresh repository per tool.
  for tool in "${order[@]}"; do init_repo "$tool"; done
  for v in "${VERSIONS[@]}"; do
    for tool in "${order[@]}"; do
      ITEM=$v ingest "$tool" debian.raw "$CACHE/debian-$v.raw" debian || continue
      rec ingest "$tool" "debian-$v" repo_bytes "$(du -sb "$(repo_of "$tool")" | cut -f1)"
      c=$(cache_of "$tool")
      if [[ -n $c ]]; then rec ingest "$tool" "debian-$v" cache_bytes "$(du -sb "$c" | cut -f1)"; fi
    done
  done

  # The latest version through each tool's mount.
  for tool in "${order[@]}"; do
    drop_caches
    tsec t warm_repo "$tool"; rec limit "cat-repo-$tool" "$LATEST" cold "$t"
    c=$(cache_of "$tool")
    rec limit "cat-repo-$tool" "$LATEST" bytes "$(du -scb "$(repo_of "$tool")" ${c:+"$c"} | tail -1 | cut -f1)"
  done
  for tool in "${order[@]}"; do first_byte "$tool" debian.raw; done
  for state in cold full warm direct; do
    for tool in "${order[@]}"; do
      if [[ $tool == vmvault ]]; then
        for view in debian.raw debian.qcow2 debian.vhdx; do seq_read vmvault "$view" "$state"; done
      else
        seq_read "$tool" debian.raw "$state"
      fi
    done
  done
  for tool in "${order[@]}"; do random_read "$tool" debian.raw; done

  # Restore the latest version to a file.
  for tool in "${order[@]}"; do restore "$tool"; done
  for tool in "${TOOLS[@]}"; do rm -rf "$(repo_of "$tool")" "$(cache_of "$tool")"; done

  # The 64 GiB sparse disk: vmvault every repetition, borg and restic once on request.
  peers=(); [[ $SPARSE_PEERS == 1 && $rep == 1 ]] && peers=(borg restic)
  for tool in vmvault "${peers[@]}"; do
    init_repo "$tool"
    ITEM=64g ingest "$tool" sparse.raw "$SPARSE" sparse &&
      rec ingest "$tool" sparse-64g repo_bytes "$(du -sb "$(repo_of "$tool")" | cut -f1)"
    rm -rf "$(repo_of "$tool")" "$(cache_of "$tool")"
  done
  rm -f "$SRC/sparse.raw"

  # Growth: the same GiB in a 1 TiB and in a 1 GiB disk.
  for g in 1t 1g; do
    init_repo vmvault
    ITEM=$g ingest vmvault growth.raw "$CACHE/growth-$g.raw" growth || true
    rm -rf "$(repo_of vmvault)"
  done
  rm -f "$SRC"/*.raw
done
ELAPSED=$(($(date +%s) - START))

# --- the report ----------------------------------------------------------------------
DATE=$(date -u +%F)
OUT=$(result_path "compare-$DATE"); [[ $QUICK == 1 ]] && OUT=$(result_path "compare-quick-$DATE")
{
  echo "# vmvault, borg and restic side by side, $DATE"
  echo
  echo "$MACHINE"
  echo "- peers: $(borg --version), $(restic version | cut -d' ' -f1-2), zstd $(zstd --version | grep -o 'v[0-9.]*' | head -1), $(fio --version)"
  echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "REPS=$REPS, QUICK=$QUICK, RUNTIME=$RUNTIME s, chunk size ${CHUNK_SIZE:-repository default}," \
       "versions ${VERSIONS[*]}, the run took $((ELAPSED / 60)) min $((ELAPSED % 60)) s."
  echo "Medians, with every repetition's values in brackets. MB = 10^6 bytes, MiB = 2^20."
  echo
  python3 "$BENCH_DIR/compare_report.py" "$OUT_TXT" "$CACHE" "$LATEST" \
    "${VERSIONS[@]/#/debian-}" sparse-64g growth-1t growth-1g
  cat <<EOF

## Commands

Each repetition, the tools in turn (order rotated each repetition). "drop" is
\`sync; echo 3 > /proc/sys/vm/drop_caches\`; SRC is a hard link to the version being
backed up (the same path every time, as a VM's disk would be); R a fresh repository.
"evict" is \`posix_fadvise(POSIX_FADV_DONTNEED)\` on every file under its arguments; "fill"
reads sparse-64g.raw on from where it last stopped until MemFree is under 512 MiB (a
server's page cache, full of other files: bench/lib.sh).
\`\`\`
# ingest (sync, and SRC's data read once first: warm source), per version, through /usr/bin/time -f '%M %U %S'
$VMVAULT init --quiet --repo R ${init_args[*]}
$VMVAULT ingest --quiet --repo R --file SRC --vm debian
borg init --encryption=none R
borg create --compression zstd,3 R::debian-<time> SRC
restic init --repository-version 2 --repo R          # RESTIC_PASSWORD set: restic encrypts
restic backup --quiet --repo R --compression auto --host bench SRC
# mount, latest version, a fresh mount each time (all in the foreground)
$VMVAULT mount --repo R MNT -f          # MNT/debian/latest/debian.{raw,qcow2,vhdx}
borg mount -f R::<latest archive> MNT   # MNT${SRC}/debian.raw
restic mount --repo R MNT               # MNT/snapshots/latest${SRC}/debian.raw
drop; <mount>; open + pread 4 KiB at 1 MiB (python, perf_counter)   # first byte
<mount>; drop; dd if=FILE of=/dev/null bs=1M                         # cold
<mount>; sync; evict R CACHE; fill; dd if=FILE of=/dev/null bs=1M    # cold, page cache full
<mount>; drop; cat R/** CACHE/** >/dev/null; dd if=FILE of=/dev/null bs=1M   # warm repository
<mount>; drop; dd if=FILE of=/dev/null bs=1M iflag=direct           # cold, O_DIRECT
<mount>; drop; fio --name=rr --filename=FILE ${FIO_ARGS[*]} --runtime=$RUNTIME --time_based
ps -o rss= -p <mount's pid>             # after each dd and after fio
# restore, after drop, timed with the sync of what it wrote
$VMVAULT restore --quiet --repo R debian --to OUT/debian.raw
cd OUT && borg extract --sparse R::<latest archive>
restic restore --quiet --repo R latest --target OUT
# limits
drop; cat debian-$LATEST.raw >/dev/null; cat debian-$LATEST.raw >/dev/null
drop; sleep 20; cat debian-$LATEST.raw >/dev/null                     # idle
evict debian-$LATEST.raw; fill; cat debian-$LATEST.raw >/dev/null     # page cache full
zstd -q -T1 -3 -c debian-$LATEST.raw >/dev/null; xxh128sum debian-$LATEST.raw >/dev/null
drop; cat R/** CACHE/** >/dev/null      # each tool's repository after v3, cold
# sparse and growth (fresh repositories)
$VMVAULT ingest --quiet --repo R --file sparse-64g.raw --vm sparse
$VMVAULT ingest --quiet --repo R --file growth-1t.raw --vm growth   # and growth-1g.raw
\`\`\`
borg keeps its chunk index in BORG_BASE_DIR and restic its index and tree cache in
RESTIC_CACHE_DIR: both are client-side, listed as "cache" and not counted in the
repository bytes. Script: \`bench/compare.sh\` (REPS=$REPS QUICK=$QUICK RUNTIME=$RUNTIME SPARSE_PEERS=$SPARSE_PEERS).
EOF
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
log "wrote $OUT ($((ELAPSED / 60)) min $((ELAPSED % 60)) s)"
