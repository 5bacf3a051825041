"""Brig's Python zygote: a warm interpreter that forks each one-shot run into a fresh sandbox.

It runs inside a sandbox of its own that Brig built (user, PID, mount, network, IPC and UTS
namespaces, the new root, no capabilities, no_new_privs, a seccomp filter that still allows
the namespace calls below, the zygote's cgroup). It imports what its template preloads once;
then it forks a sandbox for each run, built ahead, before the run comes (Brig asks for the
next one as soon as it has handed a run over), so that a run only pays for its last steps:

1. C (the fork): joins the run's cgroup (fds opened by the helper), then `unshare`s a user
   namespace (uid and gid 1000 mapped to themselves) with new mount, PID, network, IPC, UTS
   and cgroup namespaces; fresh tmpfs on /work, /tmp and /dev/shm; forks G and exits.
2. G (PID 1 of the run): a fresh /proc, the hostname, `lo` up; forks P; takes the run's
   status and life pipes from P when the run comes, and reaps until P ends; then writes P's
   raw wait status, closes `life` and exits, which ends every other process of the run.
3. P (PID 2): bounding and ambient capabilities dropped and securebits locked, its streams
   made and its first steps taken once on nothing (`warm_up`), then it waits on its channel
   for the run. When it comes: the tmpfs resized if the run's disk limit differs, stdio, the
   program's files, rlimits, every capability dropped, Brig's Landlock rules (made now, so
   that they hold the run's own mounts), every other fd closed, Brig's seccomp filter (the one every sandboxed program gets, stacked
   on the zygote's), and only then the program's code.

A setup failure goes to the run's error pipe as JSON ({"stage", "message"}), as Brig's own
setup does (one before the run comes goes to the zygote, which reports it there); P closes
that pipe just before the program runs. The zygote never reads a run's code, arguments or
environment (they come in a memfd only P reads), and a run's sandbox is forked before its run
exists, so nothing of one run is in the memory another is forked from.

Wire format on fd 3 (a SOCK_SEQPACKET socket): one JSON message per packet.
- from Brig, first: {"config": {"seccomp": base64 BPF, "hostname", "landlock": plan or null}};
- from the zygote: {"ready": true, "python": "3.x.y", "preloaded": [...], "landlock": bool} or
  {"ready": false, "error": "..."};
- from Brig, ahead of run n: {"prepare": n, "disk_bytes": N, "shm_bytes": N} with the fds
  of run n's cgroup files;
- from Brig, run n: {"run": n, "rlimits": [[resource, value]...], "disk_bytes": N,
  "shm_bytes": N} with fds [payload, stdin, stdout, stderr, status, error, life].
Nothing is sent back per run.
"""

import atexit
import base64
import ctypes
import gc
import importlib
import io
import json
import os
import resource
import signal
import socket
import stat
import struct
import sys
import traceback
import types

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
RUN_NAMESPACES = (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC
                  | CLONE_NEWUTS | CLONE_NEWCGROUP)

MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
IFF_RUNNING = 0x40

PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
# NOROOT, NO_SETUID_FIXUP and NO_CAP_AMBIENT_RAISE, each with its lock, and KEEP_CAPS_LOCKED:
# the bits Brig's own `caps::drop_all` sets.
SECUREBITS_LOCKED = 0b1110_1111
LINUX_CAPABILITY_VERSION_3 = 0x20080522
# The same numbers on every architecture.
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_RULE_PATH_BENEATH = 1

SANDBOX_ID = 1000
WORK = "/work"
MAIN = "/work/main.py"

libc = ctypes.CDLL(None, use_errno=True)

# From Brig's first message: the seccomp program, the hostname, the Landlock plan.
CONFIG = {}


class SetupError(Exception):
    """A setup step that failed: reported on the error pipe as {"stage", "message"}."""

    def __init__(self, stage, message):
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.message = message


def check(stage, result):
    """Raises SetupError for a libc call that returned -1."""
    if result == -1:
        errno = ctypes.get_errno()
        raise SetupError(stage, os.strerror(errno))
    return result


def mount(source, target, fstype, flags, data=None):
    check(f"mount {target}", libc.mount(
        source.encode() if source else None, target.encode(),
        fstype.encode() if fstype else None, ctypes.c_ulong(flags),
        data.encode() if data else None))


def prctl(stage, option, arg2=0):
    check(stage, libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(0), ctypes.c_ulong(0),
                            ctypes.c_ulong(0)))


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def limit_capabilities():
    """What can be done before the run comes, while P still needs its capabilities (to resize
    its tmpfs, to set rlimits): the bounding and ambient sets emptied, securebits locked. They
    govern what `execve` and uid changes may grant, which nothing does before the run."""
    prctl("lock securebits", PR_SET_SECUREBITS, SECUREBITS_LOCKED)
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), ctypes.c_ulong(0), ctypes.c_ulong(0),
                      ctypes.c_ulong(0)) == -1:
            if ctypes.get_errno() == 22:  # EINVAL: past the last capability
                break
            raise SetupError("drop capabilities", f"bounding set, capability {cap}: "
                             + os.strerror(ctypes.get_errno()))
    libc.prctl(PR_CAP_AMBIENT, ctypes.c_ulong(PR_CAP_AMBIENT_CLEAR_ALL), ctypes.c_ulong(0),
               ctypes.c_ulong(0), ctypes.c_ulong(0))


def drop_capabilities():
    """The rest of Brig's `caps::drop_all`: every capability set emptied, no_new_privs."""
    header = CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (CapData * 2)()
    check("drop capabilities", libc.capset(ctypes.byref(header), data))
    prctl("set no_new_privs", PR_SET_NO_NEW_PRIVS, 1)


def enforce_landlock(plan):
    """Brig's Landlock rules (`landlock::plan_for_abi`: the handled rights and the rules as
    numbers, for this kernel's ABI), made now that the run's own /work, /tmp, /dev/shm and
    /proc are mounted, so that the rules hold them, then enforced on this process."""
    attr = struct.pack("=QQQ", plan["handled_fs"], plan["handled_net"], plan["scoped"])
    ruleset = check("landlock: create the ruleset",
                    libc.syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), attr,
                                 ctypes.c_size_t(len(attr)), ctypes.c_uint(0)))
    try:
        for path, access in plan["rules"]:
            try:
                parent = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # a path this host does not have (`/lib32`...) gets no rule
            try:
                if not stat.S_ISDIR(os.fstat(parent).st_mode):
                    access &= plan["file_access"]  # directory rights do not apply to a file
                rule = struct.pack("=Qi", access, parent)  # landlock_path_beneath_attr, packed
                check(f"landlock: rule for {path}",
                      libc.syscall(ctypes.c_long(SYS_LANDLOCK_ADD_RULE), ctypes.c_int(ruleset),
                                   ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH), rule,
                                   ctypes.c_uint(0)))
            finally:
                os.close(parent)
        check("landlock: enforce", libc.syscall(ctypes.c_long(SYS_LANDLOCK_RESTRICT_SELF),
                                                ctypes.c_int(ruleset), ctypes.c_uint(0)))
    finally:
        os.close(ruleset)


def install_seccomp(program):
    """Brig's compiled filter for sandboxed programs (8 bytes per instruction)."""
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    check("seccomp", libc.prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER),
                                ctypes.cast(ctypes.byref(fprog), ctypes.c_void_p),
                                ctypes.c_ulong(0), ctypes.c_ulong(0)))


def report(fd, stage, message):
    """A setup failure, as Brig's own setup reports it."""
    try:
        os.write(fd, json.dumps({"stage": stage, "message": message}).encode())
    except OSError:
        pass


class Run:
    """One run's message and fds, as received."""

    FDS = ("payload", "stdin", "stdout", "stderr", "status", "error", "life")

    def __init__(self, message, fds):
        self.message = message
        self.__dict__.update(zip(self.FDS, fds))
        self.fds = fds

    def close_all(self):
        close_fds(self.fds)


def close_fds(fds):
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def build_sandbox(message, cgroup_fds):
    """C, then G: the run's cgroup, namespaces and writable mounts; returns in G, the run's
    PID 1, with its /proc and hostname (never in C)."""
    for fd in cgroup_fds:
        try:
            os.write(fd, b"0")
        except OSError as e:
            raise SetupError("join the cgroup", e.strerror)
    close_fds(cgroup_fds)
    check("unshare", libc.unshare(RUN_NAMESPACES))
    try:
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"{SANDBOX_ID} {SANDBOX_ID} 1\n")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"{SANDBOX_ID} {SANDBOX_ID} 1\n")
    except OSError as e:
        raise SetupError("write id maps", e.strerror)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    for target, flags, data in tmpfs_mounts(message):
        mount("tmpfs", target, "tmpfs", flags, data)
    if os.fork() != 0:
        os._exit(0)
    # G: PID 1 of the run's PID namespace.
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    socket.sethostname(CONFIG["hostname"])
    loopback_up()


def tmpfs_mounts(message):
    """The run's writable mounts: (target, flags, data)."""
    disk, shm = int(message["disk_bytes"]), int(message["shm_bytes"])
    owner = f"uid={SANDBOX_ID},gid={SANDBOX_ID}"
    return [
        (WORK, MS_NOSUID | MS_NODEV, f"size={disk},mode=0755,{owner}"),
        ("/tmp", MS_NOSUID | MS_NODEV, f"size={disk},mode=1777,{owner}"),
        ("/dev/shm", MS_NOSUID | MS_NODEV | MS_NOEXEC, f"size={shm},mode=1777,{owner}"),
    ]


def loopback_up():
    """`lo` up in the run's network namespace (SIOCSIFFLAGS; any socket carries the ioctl)."""
    import fcntl
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH22x", b"lo", IFF_UP | IFF_RUNNING)
        try:
            fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, request)
        except OSError as e:
            raise SetupError("loopback up", e.strerror)


def init(channel, program_pid):
    """G's job: take the run's status and life pipes from the program once it has its run,
    then reap everything; when the program ends, report its status and exit, which ends every
    other process of the run."""
    # Python's SIGINT handler would make PID 1 killable from inside; it has no other.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _msg, fds, _flags, _addr = socket.recv_fds(channel, 16, 2)
    except OSError:
        fds = []
    channel.close()
    if len(fds) != 2:
        os._exit(0)  # the program went before its run came: nothing to report
    status, life = fds
    while True:
        try:
            pid, wait_status = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(1)
        if pid == program_pid:
            os.write(status, struct.pack("<i", wait_status))
            # The run is over: Brig need not wait for this process's own teardown. Its exit
            # (next) ends the PID namespace and whatever is left in it.
            os.close(life)
            os._exit(0)


def lock_down(run, prepared):
    """P, once its run came: everything between the fork and the program's code, as Brig's
    `exec_child` does."""
    os.setsid()
    for (target, flags, data), (_, _, before) in zip(tmpfs_mounts(run.message),
                                                     tmpfs_mounts(prepared)):
        if data != before:  # the run's disk limit differs from the prepared one
            mount(None, target, None, MS_REMOUNT | flags, data)
    for target, fd in ((0, run.stdin), (1, run.stdout), (2, run.stderr)):
        os.dup2(fd, target)
    with os.fdopen(os.dup(run.payload), "rb") as f:
        payload = json.loads(f.read())
    for name in ("payload", "stdin", "stdout", "stderr"):
        os.close(getattr(run, name))
    for file in payload.get("files", []):
        write_file(file["path"], base64.b64decode(file["content"]), file.get("mode", 0o644))
    try:
        os.chdir(WORK)
    except OSError as e:
        raise SetupError("chdir", e.strerror)
    try:
        for res, value in run.message["rlimits"]:
            resource.setrlimit(res, (value, value))
    except (OSError, ValueError) as e:
        raise SetupError("rlimits", str(e))
    drop_capabilities()
    if CONFIG.get("landlock") is not None:
        enforce_landlock(CONFIG["landlock"])
    # Nothing of the zygote's stays open: the socket, anything a preload opened
    # (its fds are all below 65536: Brig keeps the zygote's RLIMIT_NOFILE there).
    os.closerange(3, run.error)
    os.closerange(run.error + 1, 1 << 16)
    install_seccomp(CONFIG["seccomp_program"])
    return payload


def write_file(path, content, mode):
    full = os.path.normpath(os.path.join(WORK, path))
    if not full.startswith(WORK + "/"):
        raise SetupError("write files", f"{path}: outside the work dir")
    os.makedirs(os.path.dirname(full), exist_ok=True)
    fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(content)


def exit_code_of(exit):
    """The process exit code of `SystemExit(code)`, as CPython computes it (non-int codes are
    printed to stderr, then 1)."""
    code = exit.code
    if code is None:
        return 0
    if isinstance(code, int) and not isinstance(code, bool):
        return code & 0xFF
    if isinstance(code, bool):
        return int(code)
    try:
        print(code, file=sys.stderr)
    except Exception:
        pass
    return 1


def prepare_program():
    """P, before its run comes: what does not depend on the run. The streams name fds 0-2,
    which become the run's pipes when it comes."""
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8",
                                  errors="strict", write_through=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                  errors="backslashreplace", write_through=True)
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main = types.ModuleType("__main__")
    main.__file__ = MAIN
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main


def warm_up():
    """P, before its run comes: a run's first steps once, on nothing. After the fork, each
    page of the interpreter that a step writes to (a reference count is enough) is copied
    first; this takes those copies off the run's path."""
    with open(os.devnull, "w", encoding="utf-8") as sink:
        print(1, file=sink, flush=True)
    json.loads('{"code": "", "args": [], "env": {}, "files": []}')
    exec(compile("pass\n", MAIN, "exec"), {"__name__": "__warm__"})


def run_program(payload, error_fd):
    """P: the program, with the semantics of `python3 -u main.py`. Never returns."""
    source = payload["code"]
    with open(MAIN, "w", encoding="utf-8") as f:
        f.write(source)
    sys.argv = [MAIN] + list(payload.get("args", []))
    os.environ.clear()
    os.environ.update(payload.get("env", {}))
    sys.dont_write_bytecode = "PYTHONDONTWRITEBYTECODE" in os.environ
    sys.path.insert(0, WORK)
    main = sys.modules["__main__"]
    # Setup is over: what goes wrong from here is the program's.
    os.close(error_fd)
    code = 0
    try:
        compiled = compile(source, MAIN, "exec")
    except (SyntaxError, ValueError) as e:
        # As the interpreter reports a script that does not parse: no traceback header.
        sys.stderr.write("".join(traceback.format_exception_only(type(e), e)))
        os._exit(finish(1))
    try:
        exec(compiled, main.__dict__)
    except SystemExit as e:
        code = exit_code_of(e)
    except BaseException as e:  # what the interpreter would print, without our own frame
        e.__traceback__ = e.__traceback__.tb_next if e.__traceback__ else None
        sys.excepthook(type(e), e, e.__traceback__)
        code = 1
    code = finish(code)
    os._exit(code)


def finish(code):
    """What the interpreter does at exit: wait for threads, run atexit, flush."""
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()
        atexit._run_exitfuncs()
    except SystemExit as e:
        code = exit_code_of(e)
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    return code


def spare(prepared, cgroup_fds, channel):
    """The fork of the zygote that becomes the next run's sandbox (C, G, P): built now, while
    the zygote waits for that run; P then waits on `channel` for the run itself. A failure
    before the run goes to the zygote on `channel`, which reports it on the run's error pipe;
    after, on the error pipe itself. Never returns."""
    run = None
    try:
        build_sandbox(prepared, cgroup_fds)
        to_init, from_program = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        program = os.fork()
        if program != 0:
            channel.close()
            from_program.close()
            init(to_init, program)
        to_init.close()
        limit_capabilities()
        prepare_program()
        warm_up()
        received = receive(channel)
        if received is None:
            os._exit(0)  # the zygote discarded this sandbox
        run = Run(*received)
        channel.close()
        socket.send_fds(from_program, [b"run"], [run.status, run.life])
        os.close(run.status)
        os.close(run.life)
        from_program.close()
        payload = lock_down(run, prepared)
    except BaseException as e:
        stage, message = ((e.stage, e.message) if isinstance(e, SetupError)
                          else ("zygote", f"{type(e).__name__}: {e}"))
        # Before the run, to the zygote (one packet on the channel), which passes it on.
        report(channel.fileno() if run is None else run.error, stage, message)
        os._exit(1)
    run_program(payload, run.error)


class Spare:
    """The next run's sandbox, built ahead: its index and the zygote's end of its channel."""

    def __init__(self, index, channel):
        self.index = index
        self.channel = channel

    def discard(self):
        self.channel.close()  # P sees EOF and exits; G with it


def prepare(sock, message, cgroup_fds):
    """Builds the sandbox of run `message["prepare"]` (in a fork) and returns it as a Spare."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        pid = os.fork()
    except OSError:
        close_fds(cgroup_fds)
        ours.close()
        theirs.close()
        return None
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the run's init waits for its program
        sock.close()
        ours.close()
        spare(message, cgroup_fds, theirs)
    theirs.close()
    close_fds(cgroup_fds)
    # C exits once G exists (reaped by the kernel: SIGCHLD is ignored here); G is re-parented
    # to the zygote sandbox's init. Not waiting for it leaves the zygote free for the run.
    return Spare(message["prepare"], ours)


def dispatch(spare_sandbox, run):
    """Hands `run` to its prepared sandbox, or reports why it cannot run."""
    if spare_sandbox is None or spare_sandbox.index != run.message["run"]:
        report(run.error, "zygote", "no sandbox was prepared for this run")
        return
    channel = spare_sandbox.channel
    try:
        failure = channel.recv(4096, socket.MSG_DONTWAIT)
    except BlockingIOError:
        failure = None
    except OSError:
        failure = b""
    if failure:
        failure = json.loads(failure)
        report(run.error, failure["stage"], failure["message"])
    elif failure == b"":
        report(run.error, "zygote", "the run's sandbox ended before the run")
    else:
        try:
            socket.send_fds(channel, [json.dumps(run.message).encode()], run.fds)
        except OSError as e:
            report(run.error, "zygote", f"hand the run over: {e.strerror}")


def receive(sock):
    """The next message and its fds, or None when the other end closed the socket."""
    message, fds, _flags, _addr = socket.recv_fds(sock, 1 << 20, 64)
    if not message:
        close_fds(fds)
        return None
    return json.loads(message), fds


def serve(sock):
    ready = None
    while True:
        received = receive(sock)
        if received is None:
            return
        message, fds = received
        if "prepare" in message:
            if ready is not None:
                ready.discard()
            ready = prepare(sock, message, fds)
        elif "run" in message:
            run = Run(message, fds)
            dispatch(ready, run)
            run.close_all()
            if ready is not None:
                ready.discard()
                ready = None
        else:
            close_fds(fds)


def main(argv):
    fd = int(argv[argv.index("--socket") + 1]) if "--socket" in argv else 3
    preload = []
    if "--preload" in argv:
        preload = [m for m in argv[argv.index("--preload") + 1].split(",") if m]
    sock = socket.socket(fileno=fd)
    received = receive(sock)
    if received is None:
        return
    config = received[0]["config"]
    config["seccomp_program"] = base64.b64decode(config.pop("seccomp"))
    CONFIG.update(config)
    try:
        for module in preload:
            importlib.import_module(module)
        if "matplotlib.pyplot" in preload:
            import matplotlib.pyplot as plt
            plt.figure()
            plt.close("all")
    except Exception as e:
        sock.send(json.dumps({"ready": False, "error": f"preload: {e}"}).encode())
        return
    # Forks are reaped by the kernel, not waited for.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    # Everything imported so far is kept out of the collector's reach: a run's collections
    # then do not write to (and copy) the pages it shares with the zygote.
    gc.freeze()
    sock.send(json.dumps({"ready": True, "python": sys.version.split()[0],
                          "preloaded": preload,
                          "landlock": CONFIG.get("landlock") is not None}).encode())
    serve(sock)


if __name__ == "__main__":
    main(sys.argv)
