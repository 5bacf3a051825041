#!/usr/bin/env python3
"""Start-up overhead, paired run by run: the same three commands as bench/startup.sh (bare
python3, bwrap with an equivalent setup, `brig run`), plus bwrap run by bench/cgrun.c, which
does the per-run cgroup work brig does (make the group, limits, join, read the counters,
remove it) — built with `cc` when there is one, run one after the other in a rotating
order, N times. Each iteration's overheads are taken against that iteration's own bare python
run, so the VM's drift (several ms within a minute here) cancels out; prints the median and mean
of the paired overheads and their ratio. "bwrap, cgroup work" is bwrap plus only what cgrun's
cgroup work adds (bwrap+cgroup minus the same wrapper built with -DCGRUN_NONE, which skips it):
what a bwrap that made its own cgroups would cost.

    bench/startup_paired.py BRIG [iterations] [OTHER_BRIG]     (needs root and bwrap)

With OTHER_BRIG (an earlier build, say), it is run too, as `brig-other`, in the same rotation.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

brig = sys.argv[1]
iterations = int(sys.argv[2]) if len(sys.argv) > 2 else 300
other = sys.argv[3] if len(sys.argv) > 3 else None
work = tempfile.mkdtemp()
with open(os.path.join(work, "pass.py"), "w") as f:
    f.write("pass\n")
py = "/usr/bin/python3"
commands = {
    "python3": [py, f"{work}/pass.py"],
    "bwrap": ("bwrap --unshare-all --die-with-parent --new-session --clearenv --setenv PATH /usr/bin:/bin "
              "--ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 "
              "--symlink usr/sbin /sbin --ro-bind /etc/ld.so.cache /etc/ld.so.cache --proc /proc --dev /dev "
              f"--tmpfs /tmp --ro-bind {work} /work --chdir /work --uid 1000 --gid 1000 --hostname brig "
              f"{py} /work/pass.py").split(),
    "brig": [brig, "run", f"{work}/pass.py"],
}
# bwrap doing the cgroup work brig does per run (bench/cgrun.c): a fairer "equivalent setup".
cgrun = os.path.join(work, "cgrun")
source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cgrun.c")
def build_cgrun(out, *flags):
    return any(subprocess.run(["cc", "-O2", *flags, *static, "-o", out, source],
                              stderr=subprocess.DEVNULL).returncode == 0
               for static in (["-static"], []))


built = build_cgrun(cgrun) and build_cgrun(cgrun + "-none", "-DCGRUN_NONE")
if built:
    commands["bwrap+cgroup"] = [cgrun] + commands["bwrap"]
    # The same wrapper doing no cgroup work: its own fork and exec, to subtract.
    commands["bwrap+wrapper"] = [cgrun + "-none"] + commands["bwrap"]
else:
    print("bench/cgrun.c did not build: no bwrap+cgroup column", file=sys.stderr)
if other:
    commands["brig-other"] = [other, "run", f"{work}/pass.py"]
names = list(commands)


def once(name):
    start = time.perf_counter()
    subprocess.run(commands[name], check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


for _ in range(10):  # warm-up
    for name in names:
        once(name)
paired = {name: [] for name in names if name != "python3"}
cgroup_work = []
for i in range(iterations):
    order = names[i % len(names):] + names[:i % len(names)]
    took = {name: once(name) for name in order}
    for name in paired:
        paired[name].append(took[name] - took["python3"])
    if built:
        # bwrap plus only the cgroup work: the wrapper's own cost taken out, run by run.
        cgroup_work.append(
            took["bwrap+cgroup"] - took["bwrap+wrapper"] + took["bwrap"] - took["python3"])
if cgroup_work:
    paired["bwrap, cgroup work"] = cgroup_work
for name, values in paired.items():
    print(f"{name:<18} overhead over python3: median {statistics.median(values):6.2f} ms, "
          f"mean {statistics.mean(values):6.2f} ms ({iterations} paired runs)")
for base in ["bwrap", "bwrap, cgroup work"]:
    if base not in paired:
        continue
    g, b = statistics.median(paired["brig"]), statistics.median(paired[base])
    print(f"brig overhead / {base} overhead: {g / b:.2f} (medians), "
          f"{statistics.mean(paired['brig']) / statistics.mean(paired[base]):.2f} (means)")
