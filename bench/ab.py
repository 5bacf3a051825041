#!/usr/bin/env python3
"""Two `brig` builds against each other, alternating in ABBA order so that each follows the
other as often as it precedes it (the slot bias `startup_paired.py` has to cancel by swapping
its slots): each runs `brig run` on a `pass` program N times; prints both medians and the
median and mean of the per-pair differences (A - B).

    bench/ab.py BRIG_A BRIG_B [pairs]        (needs root, like `brig run`'s defaults)
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

a, b = sys.argv[1], sys.argv[2]
pairs = int(sys.argv[3]) if len(sys.argv) > 3 else 500
program = os.path.join(tempfile.mkdtemp(), "pass.py")
with open(program, "w") as f:
    f.write("pass\n")
took = {a: [], b: []}
for i in range(pairs):
    for brig in (a, b) if i % 2 == 0 else (b, a):
        start = time.monotonic()
        subprocess.run([brig, "run", program], check=True)
        took[brig].append((time.monotonic() - start) * 1000)
diffs = [x - y for x, y in zip(took[a], took[b])]
print(
    f"A {statistics.median(took[a]):.2f} ms  B {statistics.median(took[b]):.2f} ms  "
    f"A-B median {statistics.median(diffs):+.3f} mean {statistics.mean(diffs):+.3f} ms ({pairs} pairs)"
)
