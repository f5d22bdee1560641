#!/usr/bin/env bash
# bench/dataset.sh: build (once) the realistic VM-disk dataset the benchmarks use.
#
# Output, in $VV_BENCH_CACHE (default /var/cache/vmvault-bench):
#   rootfs/          Debian 12 minbase + kernel/systemd/ssh/python3 (debootstrap)
#   debian-v1.raw    4 GiB raw disk: GPT, one partition at 1 MiB, ext4 made with
#                    `mkfs.ext4 -d` from rootfs + realistic server data (see below)
#   debian-v1.qcow2  the same disk converted with `qemu-img convert -O qcow2`
#   debian-v2.raw    v1 after a day of use: loop-mounted copy of v1 (so unchanged blocks
#                    stay where they were), `apt-get install git` in a chroot (17 packages,
#                    ~100 MB + 18 MB of .debs), logs appended, uploads appended, 1 MiB of
#                    db pages rewritten, docs and queue files deleted, new queue files
#   debian-v3.raw    v2 after another day: `apt-get install vim curl rsync man-db`,
#                    nginx log rotated (gzip) and restarted, more logs and uploads, db pages
#                    rewritten, a cache file replaced
#   sparse-64g.raw   64 GiB sparse raw disk holding ~5 GiB: v1's bytes at 0, 24 GiB and
#                    48 GiB (1 MiB-aligned copies), 1 GiB of seeded random bytes at 60 GiB
#                    and 256 MiB more at 37 GiB + 4 KiB (not chunk-aligned)
#   growth-1t.raw    1 TiB sparse raw disk holding the first GiB of v1 in four 256 MiB
#                    stretches at 0, 300 GiB, 600 GiB and 1 TiB - 256 MiB
#   growth-1g.raw    1 GiB raw disk holding the same GiB contiguously (the growth check:
#                    ingest time of the 1 TiB disk over that of the 1 GiB one)
#   dataset.txt      what was built: sizes, allocated bytes, bytes changed between versions
#
# Each file is built only if missing (delete it to rebuild it and the ones after it).
# Runs as root (debootstrap, loop devices, mount, chroot). Deterministic except for apt.
set -euo pipefail

CACHE=${VV_BENCH_CACHE:-/var/cache/vmvault-bench}
DISK_SIZE=$((4 * 1024 * 1024 * 1024))
PART_OFFSET=$((1024 * 1024))
WORK="$CACHE/work"
MNT="$WORK/mnt"

log() { printf '[dataset] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap, losetup, mount, chroot)"

# --- tools -------------------------------------------------------------------------------
need_pkgs=()
for pair in debootstrap:debootstrap qemu-img:qemu-utils mkfs.ext4:e2fsprogs sfdisk:fdisk \
            python3:python3 losetup:mount; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need_pkgs+=("${pair#*:}")
done
if ((${#need_pkgs[@]})); then
  log "installing ${need_pkgs[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_pkgs[@]}" >/dev/null
fi

# --- cleanup -----------------------------------------------------------------------------
LOOP=""
CHROOT_MOUNTS=()
cleanup() {
  local rc=$?
  for ((i = ${#CHROOT_MOUNTS[@]} - 1; i >= 0; i--)); do
    umount -l "${CHROOT_MOUNTS[i]}" 2>/dev/null || true
  done
  CHROOT_MOUNTS=()
  if mountpoint -q "$MNT" 2>/dev/null; then umount "$MNT" || umount -l "$MNT" || true; fi
  if [[ -n $LOOP ]]; then losetup -d "$LOOP" 2>/dev/null || true; LOOP=""; fi
  rm -f "$CACHE"/*.partial
  exit $rc
}
trap cleanup EXIT INT TERM

mkdir -p "$CACHE" "$WORK" "$MNT"
exec 9>"$CACHE/.dataset.lock"
flock -n 9 || die "another dataset.sh is running (lock $CACHE/.dataset.lock)"

# --- rootfs ------------------------------------------------------------------------------
if [[ ! -f $CACHE/debootstrap.ok ]]; then
  log "debootstrap bookworm into $CACHE/rootfs (several minutes)"
  rm -rf "$CACHE/rootfs"
  (cd "$CACHE" && debootstrap --variant=minbase \
     --include=linux-image-amd64,systemd,systemd-sysv,openssh-server,python3,ifupdown,iproute2,less,vim-tiny \
     bookworm rootfs http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1) \
    || die "debootstrap failed, see $CACHE/debootstrap.log"
  echo done >"$CACHE/debootstrap.ok"
fi

# --- helpers -----------------------------------------------------------------------------
# Deterministic content generators (seeded), so rebuilt datasets look the same.
PY=$(command -v /usr/bin/python3 || command -v python3)   # not a pyenv shim: 400 calls
gen() { "$PY" - "$@" <<'PY'
import gzip, os, random, sys
kind, path, size, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(seed)
os.makedirs(os.path.dirname(path), exist_ok=True)
if kind == "random":                       # incompressible: media, encrypted blobs, keys
    with open(path, "ab") as f:
        left = size
        while left > 0:
            n = min(left, 1 << 20); f.write(rnd.randbytes(n)); left -= n
    sys.exit(0)
hosts = ["web01", "web02", "db01", "cache01"]
progs = ["nginx", "sshd", "CRON", "systemd", "kernel", "postfix/smtpd", "app[%d]"]
paths = ["/", "/api/v1/items", "/api/v1/users/%d", "/static/app.%x.js", "/login", "/health",
         "/search?q=%s", "/img/%d.png"]
words = ("alpha beta gamma delta order user session cache miss hit timeout retry connect "
         "accepted closed invoice report export queue worker job done failed ok").split()
agents = ["Mozilla/5.0 (X11; Linux x86_64) Firefox/119.0", "curl/7.88.1",
          "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/119.0", "Prometheus/2.45"]
def line(t):
    r = rnd.random()
    ts = "Nov %2d %02d:%02d:%02d" % (1 + t // 86400 % 28, t // 3600 % 24, t // 60 % 60, t % 60)
    if r < 0.55:
        p = rnd.choice(paths)
        if "%d" in p: p = p % rnd.randrange(1, 99999)
        elif "%x" in p: p = p % rnd.getrandbits(32)
        elif "%s" in p: p = p % rnd.choice(words)
        return '10.%d.%d.%d - - [%s] "GET %s HTTP/1.1" %d %d "-" "%s"\n' % (
            rnd.randrange(256), rnd.randrange(256), rnd.randrange(256), ts, p,
            rnd.choice([200, 200, 200, 304, 404, 500]), rnd.randrange(100, 90000), rnd.choice(agents))
    prog = rnd.choice(progs)
    if "%d" in prog: prog = prog % rnd.randrange(1000, 60000)
    msg = " ".join(rnd.choice(words) for _ in range(rnd.randrange(4, 14)))
    return "%s %s %s: %s id=%08x dur=%dms\n" % (ts, rnd.choice(hosts), prog, msg,
                                               rnd.getrandbits(32), rnd.randrange(1, 5000))
opener = gzip.open if kind == "loggz" else open
with opener(path, "at") as f:              # append, like a growing log
    written, t = 0, seed * 7919 % 2_000_000
    while written < size:
        s = line(t); t += rnd.randrange(0, 3); f.write(s); written += len(s)
PY
}

# Compare two images: bytes in 4 KiB blocks and 1 MiB blocks that differ.
compare() { "$PY" - "$1" "$2" <<'PY'
import sys
a, b = open(sys.argv[1], "rb"), open(sys.argv[2], "rb")
B, S = 1 << 20, 4096
mb = kb = 0
while True:
    x, y = a.read(B), b.read(B)
    if not x and not y: break
    if x != y:
        mb += 1
        kb += sum(1 for i in range(0, max(len(x), len(y)), S) if x[i:i+S] != y[i:i+S])
print("%d MiB blocks (%.1f MiB), %d 4KiB blocks (%.1f MiB)" % (mb, mb, kb, kb * S / 2**20))
PY
}

allocated() {  # bytes qemu-img reports as data (not zero, present)
  qemu-img map --output=json "$1" | python3 -c '
import json, sys
print(sum(e["length"] for e in json.load(sys.stdin) if e["data"] and not e.get("zero")))'
}

attach() {  # attach partition 1 of $1 to a loop device and mount it on $MNT
  LOOP=$(losetup -f --show -o "$PART_OFFSET" --sizelimit $((DISK_SIZE - 2 * PART_OFFSET)) "$1")
  mount -t ext4 "$LOOP" "$MNT"
}
detach() {
  sync
  umount "$MNT"
  losetup -d "$LOOP"; LOOP=""
}

chroot_apt() {  # apt-get install in the mounted guest, without starting services
  local r=$MNT
  mount -t proc proc "$r/proc"; CHROOT_MOUNTS+=("$r/proc")
  mount --bind /dev "$r/dev"; CHROOT_MOUNTS+=("$r/dev")
  mount --bind /sys "$r/sys"; CHROOT_MOUNTS+=("$r/sys")
  cp /etc/resolv.conf "$r/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"; chmod +x "$r/usr/sbin/policy-rc.d"
  DEBIAN_FRONTEND=noninteractive LC_ALL=C chroot "$r" apt-get install -y -q \
    --no-install-recommends "$@" >"$WORK/apt-$1.log" 2>&1 \
    || die "apt-get install $* failed, see $WORK/apt-$1.log"
  rm -f "$r/usr/sbin/policy-rc.d"
  for ((i = ${#CHROOT_MOUNTS[@]} - 1; i >= 0; i--)); do umount "${CHROOT_MOUNTS[i]}"; done
  CHROOT_MOUNTS=()
}

# --- v1 ----------------------------------------------------------------------------------
V1="$CACHE/debian-v1.raw"
if [[ ! -f $V1 ]]; then
  log "v1: staging rootfs + server data"
  STAGE="$WORK/v1root"
  rm -rf "$STAGE"
  cp -a "$CACHE/rootfs" "$STAGE"
  # Realistic extra content for a small server (~320 MB on top of the ~850 MB rootfs):
  cp -a /usr/share/doc "$STAGE/srv/doc-mirror"                       # ~130 MB docs, text+gz
  gen log "$STAGE/var/log/nginx/access.log" $((90 << 20)) 1           # live text logs
  gen log "$STAGE/var/log/app/app.log" $((40 << 20)) 2
  for i in 1 2 3 4 5 6; do                                            # rotated, compressed
    gen loggz "$STAGE/var/log/nginx/access.log.$i.gz" $((12 << 20)) $((10 + i))
  done
  gen random "$STAGE/var/lib/app/media/uploads.bin" $((24 << 20)) 3   # incompressible
  gen random "$STAGE/var/lib/app/db/store.db" $((16 << 20)) 4         # "database" pages
  gen random "$STAGE/root/.cache/pip-wheels.bin" $((8 << 20)) 5
  for i in $(seq 1 400); do                                           # many small files
    gen log "$STAGE/var/spool/app/queue/msg-$i.txt" $((2000 + i * 37)) $((100 + i))
  done

  log "v1: mkfs.ext4 -d into a 4 GiB GPT disk"
  rm -f "$V1.partial"
  truncate -s "$DISK_SIZE" "$V1.partial"
  printf 'label: gpt\nstart=2048, size=%d, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root\n' $(((DISK_SIZE - 2 * PART_OFFSET) / 512)) \
    | sfdisk -q "$V1.partial"
  LOOP=$(losetup -f --show -o "$PART_OFFSET" --sizelimit $((DISK_SIZE - 2 * PART_OFFSET)) "$V1.partial")
  mkfs.ext4 -q -L root -E root_owner=0:0 -d "$STAGE" "$LOOP"
  losetup -d "$LOOP"; LOOP=""
  mv "$V1.partial" "$V1"
  rm -rf "$STAGE"
  rm -f "$CACHE/debian-v1.qcow2" "$CACHE/debian-v2.raw" "$CACHE/debian-v3.raw"
fi

if [[ ! -f $CACHE/debian-v1.qcow2 ]]; then
  log "v1: qemu-img convert -O qcow2"
  qemu-img convert -O qcow2 "$V1" "$CACHE/debian-v1.qcow2.partial"
  mv "$CACHE/debian-v1.qcow2.partial" "$CACHE/debian-v1.qcow2"
fi

# --- v2: day 2 ---------------------------------------------------------------------------
V2="$CACHE/debian-v2.raw"
if [[ ! -f $V2 ]]; then
  log "v2: copy v1, mount, apt-get install git, logs, new/deleted files"
  cp --sparse=always "$V1" "$V2.partial"
  attach "$V2.partial"
  chroot_apt git
  gen log "$MNT/var/log/nginx/access.log" $((12 << 20)) 21            # logs keep growing
  gen log "$MNT/var/log/app/app.log" $((6 << 20)) 22
  gen random "$MNT/var/lib/app/media/uploads.bin" $((6 << 20)) 23     # new uploads appended
  dd if=/dev/urandom of="$MNT/var/lib/app/db/store.db" bs=4096 count=256 seek=1000 \
     conv=notrunc status=none                                          # 1 MiB of db pages
  rm -rf "$MNT/srv/doc-mirror/"[a-f]*                                 # deleted files
  for i in $(seq 1 100); do rm -f "$MNT/var/spool/app/queue/msg-$i.txt"; done
  for i in $(seq 401 500); do
    gen log "$MNT/var/spool/app/queue/msg-$i.txt" $((2000 + i * 37)) $((100 + i))
  done
  detach
  mv "$V2.partial" "$V2"
  rm -f "$CACHE/debian-v3.raw"
fi

# --- v3: day 3 ---------------------------------------------------------------------------
V3="$CACHE/debian-v3.raw"
if [[ ! -f $V3 ]]; then
  log "v3: copy v2, mount, apt-get install vim curl rsync man-db, logrotate, new/deleted files"
  cp --sparse=always "$V2" "$V3.partial"
  attach "$V3.partial"
  chroot_apt vim curl rsync man-db
  # logrotate: access.log -> .1.gz, older ones shift, a fresh access.log starts
  for i in 5 4 3 2 1; do
    mv "$MNT/var/log/nginx/access.log.$i.gz" "$MNT/var/log/nginx/access.log.$((i + 1)).gz"
  done
  gzip -1 -c "$MNT/var/log/nginx/access.log" >"$MNT/var/log/nginx/access.log.1.gz"
  rm -f "$MNT/var/log/nginx/access.log"
  gen log "$MNT/var/log/nginx/access.log" $((8 << 20)) 31
  gen log "$MNT/var/log/app/app.log" $((6 << 20)) 32
  gen random "$MNT/var/lib/app/media/uploads.bin" $((6 << 20)) 33
  dd if=/dev/urandom of="$MNT/var/lib/app/db/store.db" bs=4096 count=256 seek=2000 \
     conv=notrunc status=none
  rm -f "$MNT/root/.cache/pip-wheels.bin"
  gen random "$MNT/root/.cache/pip-wheels-2.bin" $((8 << 20)) 34
  detach
  mv "$V3.partial" "$V3"
fi

# --- sparse disks ------------------------------------------------------------------------
# Seeded random bytes written at an offset of an existing file, without truncating it.
put_random() {  # put_random FILE OFFSET BYTES SEED
  "$PY" - "$@" <<'PY'
import os, random, sys
path, off, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(seed)
fd = os.open(path, os.O_WRONLY)
while size > 0:
    n = min(size, 1 << 20); os.pwrite(fd, rnd.randbytes(n), off); off += n; size -= n
os.close(fd)
PY
}
GIB=$((1 << 30))
SPARSE="$CACHE/sparse-64g.raw"
if [[ ! -f $SPARSE ]]; then
  log "sparse-64g: v1 at 0, 24 GiB, 48 GiB; random at 37 GiB + 4 KiB and 60 GiB"
  rm -f "$SPARSE.partial"
  truncate -s $((64 * GIB)) "$SPARSE.partial"
  for at_gib in 0 24 48; do   # conv=sparse: v1's holes stay holes
    dd if="$V1" of="$SPARSE.partial" bs=1M seek=$((at_gib << 10)) conv=notrunc,sparse status=none
  done
  put_random "$SPARSE.partial" $((37 * GIB + 4096)) $((256 << 20)) 41
  put_random "$SPARSE.partial" $((60 * GIB)) "$GIB" 42
  mv "$SPARSE.partial" "$SPARSE"
fi
G1T="$CACHE/growth-1t.raw"
G1G="$CACHE/growth-1g.raw"
if [[ ! -f $G1T || ! -f $G1G ]]; then
  log "growth: the first GiB of v1 in a 1 TiB sparse disk (4 stretches) and in a 1 GiB disk"
  rm -f "$G1T.partial" "$G1G.partial"
  truncate -s $((1024 * GIB)) "$G1T.partial"
  i=0
  for at_mib in 0 $((300 << 10)) $((600 << 10)) $(((1 << 20) - 256)); do
    dd if="$V1" of="$G1T.partial" bs=1M skip=$((i * 256)) count=256 seek="$at_mib" \
       conv=notrunc status=none
    i=$((i + 1))
  done
  truncate -s "$GIB" "$G1G.partial"
  dd if="$V1" of="$G1G.partial" bs=1M count=1024 conv=notrunc status=none
  mv "$G1T.partial" "$G1T"
  mv "$G1G.partial" "$G1G"
fi

# --- report ------------------------------------------------------------------------------
newest=$(ls -t "$V3" "$SPARSE" "$G1T" "$G1G" | head -1)
if [[ ! -f $CACHE/dataset.txt || $CACHE/dataset.txt -ot $newest ]]; then
  log "measuring (compare reads 3 x 8 GiB, ~1 min)"
  {
    echo "# vmvault bench dataset ($(date -u +%F), $CACHE)"
    echo "rootfs: $(du -sb "$CACHE/rootfs" | cut -f1) bytes (du -sb)"
    for f in debian-v1.raw debian-v1.qcow2 debian-v2.raw debian-v3.raw sparse-64g.raw \
             growth-1t.raw growth-1g.raw; do
      printf '%-16s virtual %s  file %s  du %s  allocated(qemu-img map) %s\n' "$f" \
        "$(qemu-img info --output=json "$CACHE/$f" | python3 -c 'import json,sys;print(json.load(sys.stdin)["virtual-size"])')" \
        "$(stat -c %s "$CACHE/$f")" "$(du -B1 "$CACHE/$f" | cut -f1)" "$(allocated "$CACHE/$f")"
    done
    echo "changed v1->v2: $(compare "$V1" "$V2")"
    echo "changed v2->v3: $(compare "$V2" "$V3")"
    echo "changed v1->v3: $(compare "$V1" "$V3")"
  } >"$CACHE/dataset.txt.partial"
  mv "$CACHE/dataset.txt.partial" "$CACHE/dataset.txt"
fi
cat "$CACHE/dataset.txt"
