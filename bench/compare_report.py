#!/usr/bin/env python3
"""The tables of bench/compare.sh, in markdown, from its measurements file.

compare_report.py MEASUREMENTS CACHE LATEST DISK...

MEASUREMENTS: one figure a line, "rep section tool item metric value".
CACHE: the dataset folder; DISK: the names of the disks ingested (CACHE/DISK.raw).
LATEST: the version read through the mounts (v3: debian-v3).
"""
import json
import os
import statistics
import subprocess
import sys
from collections import defaultdict

TOOLS = ["vmvault", "borg", "restic"]
MIB = 1 << 20
MB = 1e6

path, cache, latest = sys.argv[1:4]


def data_extents(image):
    """(start, end) of the extents qemu-img map reports as data."""
    out = subprocess.run(["qemu-img", "map", "--output=json", image], check=True,
                         capture_output=True, text=True).stdout
    return [(e["start"], e["start"] + e["length"]) for e in json.loads(out)
            if e["data"] and not e.get("zero")]


sizes = {}  # disk: (allocated bytes, virtual bytes)
for disk in sys.argv[4:]:
    image = os.path.join(cache, disk + ".raw")
    sizes[disk] = (sum(b - a for a, b in data_extents(image)), os.stat(image).st_size)
lo, hi = 1 << 20, 1301 << 20  # the fio range
fio_fraction = sum(max(0, min(hi, b) - max(lo, a))
                   for a, b in data_extents(os.path.join(cache, f"debian-{latest}.raw"))) / (hi - lo)

# data[(section, tool, item, metric)] = [value per repetition, in order]
data = defaultdict(list)
for line in open(path):
    rep, section, tool, item, metric, value = line.split()
    data[(section, tool, item, metric)].append(float(value))


def runs(key):
    return data.get(key, [])


def med(key):
    v = runs(key)
    return statistics.median(v) if v else None


def fmt(x, digits=2):
    """Three significant digits or so; `digits` decimals below 10."""
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.{min(digits, 1)}f}"
    return f"{x:.{digits}f}"


def cell(key, f=lambda x: x, digits=2):
    """median [every run], each through f."""
    v = runs(key)
    if not v:
        return "-"
    m = fmt(f(statistics.median(v)), digits)
    if len(v) == 1:
        return m
    return f"{m} [{' '.join(fmt(f(x), digits) for x in v)}]"


def failed(section, tool, item):
    n = runs((section, tool, item, "failed"))
    return f" (FAILED in {len(n)} runs)" if n else ""


# --- ingest ------------------------------------------------------------------------------
print("## Ingest (warm source), version after version into one repository per tool")
print()
print("| disk | tool | wall s | MB/s of allocated | MB/s of virtual | peak RSS MiB | CPU s "
      "| repository MB after | client cache MB |")
print("|---|---|---|---|---|---|---|---|---|")
disks = [d for d in sizes if d.startswith("debian-")]
for disk in disks + ["sparse-64g", "growth-1t", "growth-1g"]:
    alloc, virtual = sizes.get(disk, (0, 0))
    for tool in TOOLS:
        k = ("ingest", tool, disk)
        if not runs(k + ("wall",)) and not runs(k + ("failed",)):
            continue
        alloc_s = cell(k + ("wall",), lambda t: alloc / MB / t) if alloc else "-"
        virt_s = cell(k + ("wall",), lambda t: virtual / MB / t) if virtual else "-"
        print(f"| {disk} | {tool}{failed('ingest', tool, disk)} | {cell(k + ('wall',))} "
              f"| {alloc_s} | {virt_s} | {cell(k + ('rss_kib',), lambda x: x / 1024)} "
              f"| {cell(k + ('cpu',))} | {cell(k + ('repo_bytes',), lambda x: x / MB)} "
              f"| {cell(k + ('cache_bytes',), lambda x: x / MB)} |")
print()

# --- mount -------------------------------------------------------------------------------
print(f"## Reading debian-{latest} through each tool's mount (a fresh mount each time)")
print()
print("| tool | file | MB | seq MB/s, cold | seq MB/s, cold, page cache full "
      "| seq MB/s, warm repository | seq MB/s, cold, O_DIRECT "
      "| first 4 KiB ms, mount up -> read | first 4 KiB ms, mount start -> read "
      "| random 4 KiB IOPS | p50 ms | p99 ms "
      "| mount RSS MiB (after seq cold / warm / random) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
VIEWS = [("vmvault", "debian.raw"), ("vmvault", "debian.qcow2"), ("vmvault", "debian.vhdx"),
         ("borg", "debian.raw"), ("restic", "debian.raw")]
STATES = ("cold", "full", "warm", "direct")
STATE_LABEL = {"cold": "cold", "full": "cold, page cache full", "warm": "warm repository",
               "direct": "cold, O_DIRECT"}
seq_mbps = {}
for tool, view in VIEWS:
    k = ("mount", tool, view)
    size = med(k + ("bytes",))
    if size is None and not runs(k + ("ttfb_ms",)):
        continue
    for state in STATES:
        t = med(k + (f"seq_{state}",))
        seq_mbps[(tool, view, state)] = size / MB / t if size and t else None
    speed = {s: cell(k + (f"seq_{s}",), lambda t: size / MB / t) if size else "-"
             for s in STATES}
    rss = " / ".join(fmt(med(k + (m,)) / 1024 if med(k + (m,)) else None, 0)
                     for m in ("rss_seq_cold", "rss_seq_warm", "rss_random"))
    print(f"| {tool}{failed('mount', tool, view)} | {view} | {fmt(size / MB if size else None, 0)} "
          f"| {speed['cold']} | {speed['full']} | {speed['warm']} | {speed['direct']} "
          f"| {cell(k + ('ttfb_ms',))} "
          f"| {cell(k + ('ttfb_total_ms',))} | {cell(k + ('iops',), digits=0)} "
          f"| {cell(k + ('p50_ms',), digits=3)} | {cell(k + ('p99_ms',), digits=3)} | {rss} |")
print()
print(f"Random reads: fio over [1 MiB, 1301 MiB) of the raw file, {fio_fraction:.1%} of it data. "
      "vmvault's qcow2 and VHDX views are read whole (dense data, no holes), so their MB "
      "differ from the raw file's.")
print()

# --- restore -----------------------------------------------------------------------------
print(f"## Restore debian-{latest} to a file (page cache dropped first; sync included)")
print()
print("| tool | wall s | MB/s of virtual | peak RSS MiB | CPU s | checked against the source |")
print("|---|---|---|---|---|---|")
virtual = sizes.get(f"debian-{latest}", (0, 0))[1]
for tool in TOOLS:
    k = ("restore", tool, latest)
    if not runs(k + ("wall",)) and not runs(k + ("failed",)):
        continue
    checked = "xxh128 equal" if runs(k + ("verified",)) else "-"
    print(f"| {tool}{failed('restore', tool, latest)} | {cell(k + ('wall',))} "
          f"| {cell(k + ('wall',), lambda t: virtual / MB / t)} "
          f"| {cell(k + ('rss_kib',), lambda x: x / 1024)} | {cell(k + ('cpu',))} | {checked} |")
print()

# --- limits ------------------------------------------------------------------------------
print("## Limits, same run")
print()
print("| what | s | MB/s |")
print("|---|---|---|")
for tool, metric, label in [("cat", "cold", f"`cat` debian-{latest}.raw, cold (of 4 GiB)"),
                            ("cat", "idle", f"`cat` debian-{latest}.raw, cold, after 20 s idle"),
                            ("cat", "full", f"`cat` debian-{latest}.raw, cold, page cache full"),
                            ("cat", "warm", f"`cat` debian-{latest}.raw, warm"),
                            ("zstd", "warm", f"`zstd -T1 -3` debian-{latest}.raw, warm"),
                            ("xxh128sum", "warm", f"`xxh128sum` debian-{latest}.raw, warm")]:
    k = ("limit", tool, latest, metric)
    print(f"| {label} | {cell(k)} | {cell(k, lambda t: virtual / MB / t)} |")
for tool in TOOLS:
    k = ("limit", f"cat-repo-{tool}", latest)
    size = med(k + ("bytes",))
    if size is None:
        continue
    print(f"| `cat` of the {tool} repository and cache, cold ({size / MB:.0f} MB) "
          f"| {cell(k + ('cold',))} | {cell(k + ('cold',), lambda t: size / MB / t)} |")
print()

# --- targets -----------------------------------------------------------------------------
rows = []


def target(what, value, goal, ok):
    if value is None:
        rows.append((what, "-", goal, "not measured"))
    else:
        rows.append((what, value, goal, "met" if ok else "**NOT met**"))


def wall(tool, disk):
    return med(("ingest", tool, disk, "wall"))


first = disks[0]
for peer in ("borg", "restic"):
    a, b = wall("vmvault", first), wall(peer, first)
    r = b / a if a and b else None
    target(f"first ingest ({first}): vmvault speed / {peer}'s", r and f"{r:.2f}x", ">= 3x",
           r is not None and r >= 3)
for disk in disks[1:]:
    a, b = wall("vmvault", disk), wall("borg", disk)
    r = b / a if a and b else None
    target(f"later ingest ({disk}): vmvault speed / borg's", r and f"{r:.2f}x", ">= 5x",
           r is not None and r >= 5)
    a, b = wall("vmvault", disk), wall("restic", disk)
    if a and b:
        rows.append((f"later ingest ({disk}): vmvault speed / restic's", f"{b / a:.2f}x",
                     "(information)", ""))
last = disks[-1]
for peer in ("borg", "restic"):
    a, b = med(("ingest", "vmvault", last, "repo_bytes")), med(("ingest", peer, last, "repo_bytes"))
    r = a / b if a and b else None
    target(f"repository after {last}: vmvault bytes / {peer}'s", r and f"{r:.2f}x", "<= 1x",
           r is not None and r <= 1)
for state in STATES:
    label = STATE_LABEL[state]
    raw, borg = seq_mbps.get(("vmvault", "debian.raw", state)), seq_mbps.get(("borg", "debian.raw", state))
    r = raw / borg if raw and borg else None
    target(f"raw view sequential, {label}: vmvault / borg mount", r and f"{r:.1f}x", ">= 4x",
           r is not None and r >= 4)
    target(f"raw view sequential, {label}", raw and f"{raw:.0f} MB/s", ">= 2000 MB/s",
           raw is not None and raw >= 2000)
    for view in ("debian.qcow2", "debian.vhdx"):
        v = seq_mbps.get(("vmvault", view, state))
        r = v / raw if v and raw else None
        target(f"{view.split('.')[1]} view sequential, {label}: MB/s / raw view's",
               r and f"{r:.2f}", ">= 0.90", r is not None and r >= 0.9)
        # The same reads as time to deliver the whole disk (the compacted views hold
        # all of its data without the holes): for information, no goal.
        t_raw, t_view = med(("mount", "vmvault", "debian.raw", f"seq_{state}")), \
            med(("mount", "vmvault", view, f"seq_{state}"))
        if t_raw and t_view:
            rows.append((f"{view.split('.')[1]} view, {label}: time to read the whole disk "
                         "/ raw view's", f"{t_view / t_raw:.2f}", "(information)", ""))
a, b = med(("mount", "vmvault", "debian.raw", "iops")), med(("mount", "borg", "debian.raw", "iops"))
r = a / b if a and b else None
target("random 4 KiB IOPS: vmvault / borg mount", r and f"{r:.1f}x", ">= 10x", r is not None and r >= 10)
p99 = med(("mount", "vmvault", "debian.raw", "p99_ms"))
target("random 4 KiB p99, vmvault", p99 and f"{p99:.3f} ms", "<= 2 ms", p99 is not None and p99 <= 2)
ingest_rss = [x for (s, t, i, m), v in data.items() if s == "ingest" and t == "vmvault"
              and m == "rss_kib" for x in v]
peak = max(ingest_rss) / 1024 if ingest_rss else None
target("vmvault ingest peak RSS (largest of every ingest)", peak and f"{peak:.0f} MiB", "<= 256 MiB",
       peak is not None and peak <= 256)
mount_rss = [x for (s, t, i, m), v in data.items() if s == "mount" and t == "vmvault"
             and m.startswith("rss") for x in v]
peak = max(mount_rss) / 1024 if mount_rss else None
target("vmvault mount RSS after reads (largest)", peak and f"{peak:.0f} MiB", "<= 256 MiB",
       peak is not None and peak <= 256)
a, b = wall("vmvault", "growth-1t"), wall("vmvault", "growth-1g")
r = a / b if a and b else None
target("growth: ingest of 1 TiB holding 1 GiB / of the 1 GiB disk", r and f"{r:.2f}x", "<= 1.2x",
       r is not None and r <= 1.2)

print("## Targets (from the medians above)")
print()
print("| target | measured | goal | |")
print("|---|---|---|---|")
for what, value, goal, verdict in rows:
    print(f"| {what} | {value} | {goal} | {verdict} |")
