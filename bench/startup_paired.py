#!/usr/bin/env python3
"""Start-up overhead, paired run by run: the same three commands as bench/startup.sh (bare
python3, bwrap with an equivalent setup, `brig run`), run one after the other in a rotating
order, N times. Each iteration's overheads are taken against that iteration's own bare python
run, so the VM's drift (several ms within a minute here) cancels out; prints the median and mean
of the paired overheads and their ratio.

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
if other:
    commands["brig-other"] = [other, "run", f"{work}/pass.py"]
names = list(commands)


def once(argv):
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


for _ in range(10):  # warm-up
    for name in names:
        once(commands[name])
paired = {name: [] for name in names if name != "python3"}
for i in range(iterations):
    order = names[i % len(names):] + names[:i % len(names)]
    took = {name: once(commands[name]) for name in order}
    for name in paired:
        paired[name].append(took[name] - took["python3"])
for name, values in paired.items():
    print(f"{name:<10} overhead over python3: median {statistics.median(values):6.2f} ms, "
          f"mean {statistics.mean(values):6.2f} ms ({iterations} paired runs)")
g, b = statistics.median(paired["brig"]), statistics.median(paired["bwrap"])
print(f"brig overhead / bwrap overhead: {g / b:.2f} (medians), "
      f"{statistics.mean(paired['brig']) / statistics.mean(paired['bwrap']):.2f} (means)")
