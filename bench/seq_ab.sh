#!/usr/bin/env bash
# bench/seq_ab.sh: sequential reads through the mount, two builds alternating.
#
# For measuring one change to the read path: debian-v1, v2 and v3 (bench/dataset.sh)
# ingested version after version into one repository by build A, then REPS times
# (default 5), for each view in VIEWS and for A and B in turn (B first in even
# repetitions), a fresh mount of that build, dropped page cache (FULL=1: the repository
# evicted and the page cache filled with other files instead, see fill_page_cache in
# lib.sh), and `dd bs=1M` of the latest version's view with DD_FLAGS (e.g. iflag=direct).
# Prints wall seconds, MB/s and the mount's CPU seconds; medians.
#
#   bench/seq_ab.sh /path/to/vmvault-A /path/to/vmvault-B
#   REPS=3 VIEWS="debian.raw debian.qcow2" DD_FLAGS=iflag=direct bench/seq_ab.sh A B
#   FULL=1 bench/seq_ab.sh A B                       # the page cache full, not dropped
#   ENV_B="VV_SOMETHING=1" bench/seq_ab.sh A A      # one build, B with an environment
#   LABEL_A="git 1234abc" LABEL_B="git 5678def" ...  # described in the results file
#
# Writes bench/results/seq-ab-<date>[-NAME].md. Runs as root (drops the page cache).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
REPS=${REPS:-5}
VIEWS=${VIEWS:-debian.raw debian.qcow2 debian.vhdx}
DD_FLAGS=${DD_FLAGS:-}
FULL=${FULL:-0}
ENV_A=${ENV_A:-}
ENV_B=${ENV_B:-}
LABEL_A=${LABEL_A:-}  # what the builds are, for the results file
LABEL_B=${LABEL_B:-}
VMVAULT_REV="A and B below"

[[ $# -eq 2 ]] || die "usage: bench/seq_ab.sh VMVAULT_A VMVAULT_B"
[[ $(id -u) -eq 0 ]] || die "run as root (drops the page cache)"
need python3:python3
for v in v1 v2 v3; do [[ -f $CACHE/debian-$v.raw ]] || die "no dataset: run bench/dataset.sh"; done
[[ $FULL == 0 || $FULL == 1 ]] || die "FULL must be 0 or 1, not '$FULL'"
[[ $FULL == 0 || -f ${BALLAST:-$CACHE/sparse-64g.raw} ]] ||
  die "FULL=1 fills the page cache from ${BALLAST:-$CACHE/sparse-64g.raw}, which is missing: run bench/dataset.sh"
mkdir -p "$SCRATCH" "$RESULTS"
WORKDIR=$(mktemp -d "$SCRATCH/seq-ab.XXXXXX")
trap 'unmount_all; rm -rf "$WORKDIR"' EXIT
# Copies, so a rebuild during the run cannot change them.
cp "$1" "$WORKDIR/vmvault-A"; cp "$2" "$WORKDIR/vmvault-B"
declare -A BIN=([A]="$WORKDIR/vmvault-A" [B]="$WORKDIR/vmvault-B") ENV=([A]="$ENV_A" [B]="$ENV_B")

REPO="$WORKDIR/repo"
"${BIN[A]}" init --quiet --repo "$REPO"
mkdir -p "$WORKDIR/src"
for v in v1 v2 v3; do
  ln -f "$CACHE/debian-$v.raw" "$WORKDIR/src/debian.raw" 2>/dev/null ||
    cp --sparse=always "$CACHE/debian-$v.raw" "$WORKDIR/src/debian.raw"
  "${BIN[A]}" ingest --quiet --repo "$REPO" --file "$WORKDIR/src/debian.raw" --vm debian
done

declare -A SECS CPU
for rep in $(seq 1 "$REPS"); do
  order=(A B); ((rep % 2 == 0)) && order=(B A)
  for view in $VIEWS; do
    for b in "${order[@]}"; do
      # shellcheck disable=SC2086 # ENV is a list of VAR=value words
      mount_fuse "$WORKDIR/mnt" "debian/latest/$view" 10 env ${ENV[$b]} "${BIN[$b]}" mount \
        --repo "$REPO" "$WORKDIR/mnt" -f || die "cannot mount with build $b"
      if [[ $FULL == 1 ]]; then sync; evict "$REPO"; fill_page_cache; else drop_caches; fi
      t=
      # shellcheck disable=SC2086
      tsec t dd if="$WORKDIR/mnt/debian/latest/$view" of=/dev/null bs=1M $DD_FLAGS status=none
      # env execs the mount, so its PID is the mount's
      c=$(awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/${MOUNT_PIDS[-1]}/stat")
      bytes=$(stat -c %s "$WORKDIR/mnt/debian/latest/$view")
      SECS[$b,$view]+="$t "; CPU[$b,$view]+="$c "
      log "rep $rep: $b $view $t s, mount CPU $c s"
      unmount_all
      echo "$bytes" >"$WORKDIR/bytes-$view"
    done
  done
done

out=$(result_path "seq-ab-$(date +%F)${NAME:+-$NAME}")
{
  echo "# Sequential reads through the mount, two builds alternating, $(date +%F)"
  echo
  machine_md
  echo
  echo "- A: \`$1\` ${LABEL_A} ${ENV_A:+(env $ENV_A)}"
  echo "- B: \`$2\` ${LABEL_B} ${ENV_B:+(env $ENV_B)}"
  echo
  state="page cache dropped after each mount came up"
  [[ $FULL == 1 ]] && state="after each mount came up, the repository evicted and the page cache filled with other files (FULL=1)"
  echo "Medians of $REPS runs, every run in brackets. dd flags: \`bs=1M ${DD_FLAGS}\`; $state."
  echo
  echo "| view | build | s | MB/s | mount CPU s |"
  echo "|---|---|---|---|---|"
  for view in $VIEWS; do
    bytes=$(cat "$WORKDIR/bytes-$view")
    for b in A B; do
      # shellcheck disable=SC2086
      s=$(median ${SECS[$b,$view]})
      # shellcheck disable=SC2086
      echo "| $view | $b | $s [${SECS[$b,$view]% }] | $(python3 -c "print(round($bytes / 1e6 / $s))") | $(median ${CPU[$b,$view]}) [${CPU[$b,$view]% }] |"
    done
  done
  echo
  prep="\`sync; echo 3 > /proc/sys/vm/drop_caches\`"
  [[ $FULL == 1 ]] && prep="\`sync\`; evict R; fill_page_cache (bench/lib.sh)"
  echo "Commands (each run): \`vmvault mount --repo R MNT -f\`; $prep;"
  echo "\`dd if=MNT/debian/latest/VIEW of=/dev/null bs=1M $DD_FLAGS\`. Script: \`REPS=$REPS VIEWS=\"$VIEWS\" DD_FLAGS=$DD_FLAGS FULL=$FULL bench/seq_ab.sh A B\`."
} >"$out"
cat "$out"
log "wrote $out"
