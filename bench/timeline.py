#!/usr/bin/env python3
"""`brig run` against bwrap, segment by segment, from kernel tracepoints.

Runs bare python3, bwrap (the same setup as bench/startup.sh) and `brig run` on a `pass`
program N times each, in rotation, under `perf record` with a handful of tracepoints (process
fork/exec/exit, clone/clone3, exit_group, wait4/waitid returns), then prints, per command, the
median time of each segment of a run:

    fork->exec           the harness's fork to the sandboxer's exec
    exec->clone          the sandboxer's exec to its clone into the new namespaces
    clone->pyexec        that clone to python's exec inside
    python               python's exec to its exit_group
    pyexit->init         python's exit to its reaper (the sandbox's init) leaving wait4
    init->top wakes      the init's exit_group to the sandboxer (top) next returning from a
                         read or wait (brig: the program's status; bwrap: its eventfd)
    top->exit_group      the sandboxer's own work after that, up to its exit_group
    exit_group->waited   the sandboxer's exit to the harness's wait4 returning
    total                fork to the harness's wait4 returning

    bench/timeline.py BRIG[,BRIG2...] [runs]       (needs root, perf, bwrap)

Tracepoints make every traced process's syscalls slower, so the absolute numbers are inflated;
compare the columns of one run with each other. Several brig builds can be compared at once.
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict

PY = "/usr/bin/python3"
EVENTS = ",".join([
    "sched:sched_process_exec", "sched:sched_process_fork", "sched:sched_process_exit",
    "syscalls:sys_enter_clone", "syscalls:sys_enter_clone3", "syscalls:sys_enter_exit_group",
    "syscalls:sys_exit_wait4", "syscalls:sys_exit_waitid", "syscalls:sys_exit_read",
])


def commands(brigs, work):
    bwrap = ("bwrap --unshare-all --die-with-parent --new-session --clearenv --setenv PATH /usr/bin:/bin "
             "--ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 "
             "--symlink usr/sbin /sbin --ro-bind /etc/ld.so.cache /etc/ld.so.cache --proc /proc --dev /dev "
             f"--tmpfs /tmp --ro-bind {work} /work --chdir /work --uid 1000 --gid 1000 --hostname brig "
             f"{PY} /work/pass.py").split()
    cmds = {"python3": [PY, f"{work}/pass.py"], "bwrap": bwrap}
    for brig in brigs:
        cmds[brig] = [brig, "run", f"{work}/pass.py"]
    return cmds


def child(brigs, runs, work):
    cmds = commands(brigs, work)
    names = list(cmds)
    for name in names:  # warm-up
        for _ in range(5):
            subprocess.run(cmds[name], check=True, stdout=subprocess.DEVNULL)
    for i in range(runs):
        for name in names[i % len(names):] + names[:i % len(names)]:
            subprocess.run(cmds[name], check=True, stdout=subprocess.DEVNULL)


LINE = re.compile(r"^\s*(.+?)\s+(\d+)/(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)$")


def parse(script_output):
    """One dict of event times (ms) per run, keyed by what ran."""
    events = []
    for line in script_output.splitlines():
        m = LINE.match(line)
        if m:
            _, _, tid, t, name, rest = m.groups()
            events.append((float(t) * 1e3, int(tid), name, rest))
    harness = events[0][1]
    parent, runs, cur = {}, [], None

    def top_of(tid):
        while tid in parent and parent[tid] != harness:
            tid = parent[tid]
        return tid

    for t, tid, name, rest in events:
        if name == "sched:sched_process_fork":
            child_tid = int(re.search(r"child_pid=(\d+)", rest).group(1))
            parent[child_tid] = tid
            if tid == harness:
                cur = {"top": child_tid, "fork": t}
                runs.append(cur)
            continue
        if cur is None:
            continue
        if tid == harness:
            if name.startswith("syscalls:sys_exit_wait") and "top_exit" in cur and "waited" not in cur:
                cur["waited"] = t
            continue
        if top_of(tid) != cur["top"]:
            continue
        role = "top" if tid == cur["top"] else ("init" if parent.get(tid) == cur["top"] else "prog")
        if name == "sched:sched_process_exec":
            path = re.search(r"filename=(\S+)", rest).group(1)
            if role == "top" and "exec" not in cur:
                cur["exec"], cur["kind"] = t, path
            if path.endswith("python3"):
                cur["pyexec"], cur["py"] = t, tid
        elif name in ("syscalls:sys_enter_clone", "syscalls:sys_enter_clone3"):
            if role == "top" and "exec" in cur and "clone" not in cur:
                cur["clone"] = t
        elif name == "syscalls:sys_enter_exit_group":
            if tid == cur.get("py"):
                cur["pyexit"] = t
                if role == "top":  # bare python: no sandboxer around it
                    cur["top_exit"] = t
            elif role == "init":
                cur["init_exit"] = t
            elif role == "top":
                cur["top_exit"] = t
        elif name.startswith("syscalls:sys_exit_wait") or name == "syscalls:sys_exit_read":
            is_wait = name != "syscalls:sys_exit_read"
            if role == "init" and is_wait and "pyexit" in cur and "init_waited" not in cur:
                cur["init_waited"] = t
            if role == "top" and "init_exit" in cur and "top_woke" not in cur:
                cur["top_woke"] = t
    return [r for r in runs if "waited" in r and "pyexec" in r]


SEGMENTS = [
    ("fork->exec", "fork", "exec"), ("exec->clone", "exec", "clone"),
    ("clone->pyexec", "clone", "pyexec"), ("python", "pyexec", "pyexit"),
    ("pyexit->init", "pyexit", "init_waited"), ("init->top wakes", "init_exit", "top_woke"),
    ("top->exit_group", "top_woke", "top_exit"), ("exit_group->waited", "top_exit", "waited"),
    ("total", "fork", "waited"),
]


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2].split(","), int(sys.argv[3]), sys.argv[4])
        return
    brigs = [os.path.abspath(b) for b in sys.argv[1].split(",")]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    with tempfile.TemporaryDirectory() as work:
        with open(os.path.join(work, "pass.py"), "w") as f:
            f.write("pass\n")
        data = os.path.join(work, "perf.data")
        subprocess.run(["perf", "record", "-q", "-o", data, "-e", EVENTS, "--",
                        PY, os.path.abspath(__file__), "--child", ",".join(brigs), str(runs), work],
                       check=True)
        out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,pid,tid,time,event,trace"],
                             check=True, capture_output=True, text=True).stdout
    by_kind = defaultdict(list)
    for run in parse(out):
        by_kind[run["kind"]].append(run)
    kinds = [k for k in [PY, "/usr/bin/bwrap"] + brigs if k in by_kind]
    labels = [os.path.basename(k) for k in kinds]
    print(f"median ms over {runs} runs each (under tracepoints: compare columns, not absolutes)")
    print(f"{'segment':20}" + "".join(f"{label:>12}" for label in labels))
    for name, a, b in SEGMENTS:
        row = f"{name:20}"
        for kind in kinds:
            values = [r[b] - r[a] for r in by_kind[kind] if a in r and b in r]
            row += f"{statistics.median(values):12.3f}" if values else f"{'-':>12}"
        print(row)


if __name__ == "__main__":
    main()
