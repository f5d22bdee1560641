# bench/lib.sh: shared helpers for the bench/*.sh scripts. Source it; do not run it.
# shellcheck shell=bash

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=$(cd "$BENCH_DIR/.." && pwd)
CACHE=${VV_BENCH_CACHE:-/var/cache/vmvault-bench}
SCRATCH=${VV_BENCH_SCRATCH:-/var/tmp/vmvault-bench}
BUILD_DIR=${VV_BENCH_BUILD:-$SRC_DIR/build/bench}
RESULTS="$BENCH_DIR/results"

log() { printf '[%s] %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The results file for NAME (e.g. compare-2026-11-22): $RESULTS/NAME.md, or NAME-2.md,
# NAME-3.md ... when an earlier run of the same day has the name, so no run's
# results are written over.
result_path() {
  local path="$RESULTS/$1.md" n=2
  while [[ -e $path ]]; do path="$RESULTS/$1-$n.md"; n=$((n + 1)); done
  echo "$path"
}

# apt-get install whatever of "command:package" pairs is missing.
need() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
}

# Build vmvault (RelWithDebInfo, no tests) and copy it to $SCRATCH so a rebuild by
# someone else cannot change the binary in the middle of a run. Sets VMVAULT and
# VMVAULT_REV. VMVAULT=/path/to/binary in the environment skips the build.
build_vmvault() {
  VMVAULT_REV="$(git -C "$SRC_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if [[ -n $(git -C "$SRC_DIR" status --porcelain -- . ':!bench' 2>/dev/null) ]]; then
    VMVAULT_REV+="+uncommitted"
  fi
  if [[ -n ${VMVAULT:-} ]]; then log "using prebuilt $VMVAULT"; return; fi
  need cmake:cmake ninja:ninja-build
  local try
  for try in 1 2 3 4 5; do
    if cmake -S "$SRC_DIR" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
         -DVMVAULT_BUILD_TESTS=OFF >"$SCRATCH/build.log" 2>&1 &&
       ninja -C "$BUILD_DIR" vmvault >>"$SCRATCH/build.log" 2>&1; then
      mkdir -p "$SCRATCH/bin"
      cp "$BUILD_DIR/tools/vmvault" "$SCRATCH/bin/vmvault"
      VMVAULT="$SCRATCH/bin/vmvault"
      log "built vmvault $VMVAULT_REV (RelWithDebInfo)"
      return
    fi
    log "build failed (try $try/5, see $SCRATCH/build.log); retrying in 60 s"
    sleep 60
  done
  die "cannot build vmvault"
}

machine_md() {
  local cpu mem disk dev
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
  dev=$(df --output=source "$SCRATCH" | tail -1)
  disk="$dev ($(df -h --output=fstype,size "$SCRATCH" | tail -1 | xargs), $(lsblk -ndo ROTA,MODEL "$dev" 2>/dev/null | sed 's/^ *0/non-rotational/;s/^ *1/rotational/' | xargs || true))"
  cat <<EOF
- nproc: $(nproc); CPU: $cpu
- RAM: $mem; kernel: $(uname -r); OS: $(. /etc/os-release && echo "$PRETTY_NAME")
- scratch/cache disk: $disk
- vmvault: git $VMVAULT_REV, RelWithDebInfo (-O2 -g)
- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)
EOF
}

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# A server's steady state instead of a dropped cache: the page cache holds other files and
# free memory is short, so a read takes its pages from the reclaim of those files. On a
# VM that hands freed memory back to its host (free page reporting), a read after
# drop_caches instead takes pages the host must fault in again, at a cost that changes from
# minute to minute and hits every reader alike (bench/README.md, "The page cache on this
# VM"). Both work on any machine.
#
# evict PATH...: the files under each PATH leave the page cache (POSIX_FADV_DONTNEED).
evict() {
  python3 - "$@" <<'PY'
import os, sys
for root in sys.argv[1:]:
    files = [root] if os.path.isfile(root) else \
        [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
    for f in files:
        try:
            fd = os.open(f, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:  # a socket, or gone: nothing cached (O_NONBLOCK: a FIFO)
            continue
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
PY
}
# fill_page_cache: reads BALLAST (default: the 64 GiB sparse disk, mostly holes) on from
# where the last call stopped until MemFree is under FILL_FLOOR_MIB (512).
BALLAST_OFF=0
fill_page_cache() {
  local ballast=${BALLAST:-$CACHE/sparse-64g.raw} floor=${FILL_FLOOR_MIB:-512} free need size i
  [[ -f $ballast ]] || die "no ballast file $ballast to fill the page cache with: run bench/dataset.sh, or set BALLAST"
  [[ $floor =~ ^[0-9]+$ ]] || die "FILL_FLOOR_MIB must be a number of MiB, not '$floor'"
  size=$(($(stat -c %s "$ballast") >> 20))
  for ((i = 0; i < 8; i++)); do
    free=$(awk '/^MemFree:/ {print int($2 / 1024)}' /proc/meminfo)
    need=$((free - floor))
    ((need > 0)) || return 0
    ((BALLAST_OFF + need <= size)) || BALLAST_OFF=0
    dd if="$ballast" of=/dev/null bs=1M skip="$BALLAST_OFF" count="$need" status=none
    BALLAST_OFF=$((BALLAST_OFF + need))
  done
}

# tsec VAR cmd...: run cmd, store wall seconds (float) in VAR. Output goes nowhere.
tsec() {
  local __var=$1; shift
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  "$@" || rc=$?
  t1=$(date +%s.%N)
  printf -v "$__var" '%s' "$(python3 -c "print(f'{$t1 - $t0:.3f}')")"
  return $rc
}

median() { python3 -c 'import statistics,sys; print(f"{statistics.median(float(x) for x in sys.argv[1:]):.3f}")' "$@"; }

# FUSE mounts started by the script; unmounted by unmount_all (call it from the trap).
MOUNTS=()
MOUNT_PIDS=()
# mount_fuse MNT PATH TIMEOUT_S CMD...: runs CMD, a FUSE server staying in the
# foreground, in the background; returns once MNT is mounted and MNT/PATH exists, or
# 1 (said in the log) when that does not happen within TIMEOUT_S.
mount_fuse() {
  local mnt=$1 path=$2 timeout=$3 i
  shift 3
  mkdir -p "$mnt"
  "$@" >"$mnt.log" 2>&1 &
  MOUNT_PIDS+=($!)
  MOUNTS+=("$mnt")
  for ((i = 0; i < timeout * 10; i++)); do
    mountpoint -q "$mnt" && [[ -e $mnt/$path ]] && return 0
    kill -0 "${MOUNT_PIDS[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  log "mount on $mnt did not come up: $(tail -5 "$mnt.log")"
  return 1
}
mount_repo() {  # mount_repo REPO MNT PATH: vmvault mount, waits for MNT/PATH
  mount_fuse "$2" "$3" 10 "$VMVAULT" mount --repo "$1" "$2" -f || die "cannot mount $1"
}
is_mounted() { awk -v m="$1" '$2 == m {f = 1} END {exit !f}' /proc/mounts; }
unmount_all() {
  local m p
  for m in "${MOUNTS[@]}"; do
    # /proc/mounts, not mountpoint(1): a crashed FUSE server leaves a mount that stat fails on
    if is_mounted "$m"; then
      fusermount3 -u "$m" 2>/dev/null || umount "$m" 2>/dev/null || fusermount3 -uz "$m" ||
        umount -l "$m" || true
    fi
  done
  for p in "${MOUNT_PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill "$p" 2>/dev/null || true
  done
  MOUNTS=(); MOUNT_PIDS=()
}
