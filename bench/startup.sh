#!/usr/bin/env bash
# Start-up overhead of a sandboxed `pass` program, side by side in one hyperfine run:
# bare python3, bubblewrap with an equivalent setup, and `brig run` (every layer on: user, PID,
# mount, network, IPC, UTS and cgroup namespaces, new root with pivot_root, cgroup limits,
# Landlock, seccomp, rlimits). Prints each mean and the overhead over bare python, and ratios.
#
#   bench/startup.sh [runs]        (needs root, hyperfine, bwrap; builds brig --release)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-300}
target=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p brig
brig="$target/release/brig"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo pass > "$work/pass.py"
py=/usr/bin/python3
bwrap_cmd="bwrap --unshare-all --die-with-parent --new-session --clearenv --setenv PATH /usr/bin:/bin \
 --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/sbin /sbin \
 --ro-bind /etc/ld.so.cache /etc/ld.so.cache --proc /proc --dev /dev --tmpfs /tmp \
 --ro-bind $work /work --chdir /work --uid 1000 --gid 1000 --hostname brig $py /work/pass.py"
hyperfine -N --warmup 30 --runs "$runs" --export-json "$work/out.json" \
  -n python3 "$py $work/pass.py" \
  -n bwrap "$bwrap_cmd" \
  -n brig "$brig run $work/pass.py" >&2
python3 - "$work/out.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
bare = r["python3"]["mean"] * 1000
print(f"{'command':<8} {'mean ms':>8} {'median ms':>10} {'overhead ms':>12}")
for name in ["python3", "bwrap", "brig"]:
    mean, median = r[name]["mean"] * 1000, r[name]["median"] * 1000
    print(f"{name:<8} {mean:8.2f} {median:10.2f} {mean - bare:12.2f}")
ob = r["bwrap"]["mean"] * 1000 - bare
og = r["brig"]["mean"] * 1000 - bare
print(f"brig/python3 = {r['brig']['mean']/r['python3']['mean']:.3f}, bwrap/python3 = {r['bwrap']['mean']/r['python3']['mean']:.3f}, "
      f"brig overhead / bwrap overhead = {og/ob if ob > 0 else float('nan'):.2f}")
PY
