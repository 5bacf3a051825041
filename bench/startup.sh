#!/usr/bin/env bash
# Start-up overhead of a sandboxed `pass` program, side by side: bare python3, bubblewrap with an
# equivalent setup, and `brig run` (every layer on: user, PID, mount, network, IPC, UTS and cgroup
# namespaces, the new root, cgroup limits, Landlock, seccomp, rlimits). Prints each mean and the
# overhead over bare python, and the ratio of brig's overhead to bwrap's. When `cc` can build
# bench/cgrun.c it also runs bwrap doing brig's per-run cgroup work, and the ratio to that.
#
#   bench/startup.sh [runs] [rounds]     (needs root, hyperfine, bwrap; builds brig --release)
#
# With rounds = 1 (the default) it is one hyperfine run of `runs` runs per command. This VM drifts
# by several ms within a minute, and hyperfine runs the commands one after the other, so with
# rounds = N it makes N hyperfine runs of runs/N each, rotating which command goes first, and
# reports the overheads paired within each round (median over rounds) as well as pooled.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-300}
rounds=${2:-1}
target=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p brig
# .cargo/config.toml names the target triple (brig is linked static-pie), so the binary is
# under target/<triple>/release.
triple=${CARGO_BUILD_TARGET:-$(sed -n 's/^target = "\(.*\)"/\1/p' .cargo/config.toml)}
brig="$target/$triple/release/brig"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo pass > "$work/pass.py"
py=/usr/bin/python3
bwrap_cmd="bwrap --unshare-all --die-with-parent --new-session --clearenv --setenv PATH /usr/bin:/bin \
 --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/sbin /sbin \
 --ro-bind /etc/ld.so.cache /etc/ld.so.cache --proc /proc --dev /dev --tmpfs /tmp \
 --ro-bind $work /work --chdir /work --uid 1000 --gid 1000 --hostname brig $py /work/pass.py"
names=(python3 bwrap brig)
commands=("$py $work/pass.py" "$bwrap_cmd" "$brig run $work/pass.py")
# bwrap doing the per-run cgroup work brig does (bench/cgrun.c), and the same wrapper doing
# none of it (its own fork and exec, to subtract): see bench/startup_paired.py.
cgrun_built() {
  local out=$1
  shift
  cc -O2 "$@" -static -o "$out" bench/cgrun.c 2>/dev/null || cc -O2 "$@" -o "$out" bench/cgrun.c 2>/dev/null
}
if cgrun_built "$work/cgrun" && cgrun_built "$work/cgrun-none" -DCGRUN_NONE; then
  names+=(bwrap+cgroup bwrap+wrapper)
  commands+=("$work/cgrun $bwrap_cmd" "$work/cgrun-none $bwrap_cmd")
else
  echo "bench/cgrun.c did not build: no bwrap+cgroup columns" >&2
fi
count=${#names[@]}
per_round=$(( runs / rounds ))
for round in $(seq 0 $(( rounds - 1 ))); do
  args=()
  for i in $(seq 0 $(( count - 1 ))); do
    k=$(( (i + round) % count ))
    args+=(-n "${names[$k]}" "${commands[$k]}")
  done
  hyperfine -N --warmup 20 --runs "$per_round" --export-json "$work/round-$round.json" "${args[@]}" >&2
done
python3 - "$work" "$rounds" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
per = []
for n in range(rounds):
    per.append({x["command"]: x for x in json.load(open(f"{work}/round-{n}.json"))["results"]})
names = list(per[0])
times = {name: [t for r in per for t in r[name]["times"]] for name in names}
bare = statistics.mean(times["python3"]) * 1000
print(f"{'command':<14} {'mean ms':>8} {'median ms':>10} {'overhead ms':>12}")
for name in names:
    mean, median = statistics.mean(times[name]) * 1000, statistics.median(times[name]) * 1000
    print(f"{name:<14} {mean:8.2f} {median:10.2f} {mean - bare:12.2f}")
ob = statistics.mean(times["bwrap"]) * 1000 - bare
og = statistics.mean(times["brig"]) * 1000 - bare
print(f"pooled: brig overhead {og:.2f} ms, bwrap overhead {ob:.2f} ms, "
      f"brig overhead / bwrap overhead = {og/ob if ob > 0 else float('nan'):.2f}")
if "bwrap+cgroup" in times:
    work_ms = statistics.mean(times["bwrap+cgroup"]) * 1000 - statistics.mean(times["bwrap+wrapper"]) * 1000
    oc = ob + work_ms
    print(f"pooled: bwrap with the cgroup work (bwrap+cgroup - bwrap+wrapper + bwrap) overhead "
          f"{oc:.2f} ms, brig overhead / that = {og/oc if oc > 0 else float('nan'):.2f}")
if rounds > 1:
    paired = [((r["brig"]["mean"] - r["python3"]["mean"]) * 1000,
               (r["bwrap"]["mean"] - r["python3"]["mean"]) * 1000) for r in per]
    for n, (g, b) in enumerate(paired):
        print(f"round {n}: brig +{g:.2f} ms, bwrap +{b:.2f} ms")
    g = statistics.median(p[0] for p in paired)
    b = statistics.median(p[1] for p in paired)
    print(f"median over {rounds} rounds: brig overhead {g:.2f} ms, bwrap overhead {b:.2f} ms, "
          f"ratio {g/b if b > 0 else float('nan'):.2f}")
PY
