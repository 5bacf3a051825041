#!/usr/bin/env python3
"""Where `brig run`'s start-up time goes, on one clock: this script's own spawn of `brig run`,
each `BRIG_TRACE_PHASES` phase (they carry their CLOCK_MONOTONIC time), the moment the sandboxed
Python program runs its first line (it prints time.monotonic(); no time namespace is used, so
the clock is the host's), and the moment this script sees brig exit. Prints the median of each
event over N runs, in ms after the spawn, and the gaps that `BRIG_TRACE_PHASES` alone cannot
show: before `main` (fork, exec, ld.so) and after `main` returns (destructors, exit).

    bench/phases.py BRIG [runs]        (needs root; run it on a quiet machine)

For comparison it also times a bare `python3` on the same program (spawn -> first line, and
last line -> exit seen).
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

brig = sys.argv[1]
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 60
work = tempfile.mkdtemp()
program = os.path.join(work, "stamp.py")
with open(program, "w") as f:
    f.write("import time\nprint(time.monotonic())\n")
env = {"BRIG_TRACE_PHASES": "1", "PATH": "/usr/bin:/bin"}
phase_line = re.compile(r"brig-phase\s+[\d.]+ ms  (.*?) @(\d+\.\d+)")

events = {}
bare = {"spawn -> first line": [], "first line -> exit seen": []}
for i in range(runs):
    t0 = time.monotonic()
    p = subprocess.run([brig, "run", program], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    t1 = time.monotonic()
    if p.returncode != 0:
        sys.exit(f"brig run failed ({p.returncode}): {p.stderr.decode()[-500:]}")
    seen = {"spawn": t0, "the program's first line": float(p.stdout.split()[-1]), "exit seen": t1}
    for m in phase_line.finditer(p.stderr.decode()):
        seen.setdefault(m.group(1), float(m.group(2)))
    for name, t in seen.items():
        events.setdefault(name, []).append((t - t0) * 1000)
    t0 = time.monotonic()
    out = subprocess.run(["/usr/bin/python3", program], stdout=subprocess.PIPE).stdout
    t1 = time.monotonic()
    first = float(out.split()[-1])
    bare["spawn -> first line"].append((first - t0) * 1000)
    bare["first line -> exit seen"].append((t1 - first) * 1000)

print(f"brig run, {runs} runs (median ms after the spawn; + is the gap from the line above):")
previous = 0.0
for name, values in sorted(events.items(), key=lambda kv: statistics.median(kv[1])):
    m = statistics.median(values)
    print(f"  {m:8.3f}  +{m - previous:6.3f}  {name}")
    previous = m
print("bare python3, same program:")
for name, values in bare.items():
    print(f"  {statistics.median(values):8.3f}  {name}")
