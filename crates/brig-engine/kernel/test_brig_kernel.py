"""Tests for brig_kernel.py, driving a real kernel process over its fd contract.

Run from the repository root:

    /usr/bin/python3 -m unittest discover -s crates/brig-engine/kernel -v

Tests that need numpy/pandas/matplotlib print ``SKIP:`` and skip when the module is
missing, and fail instead when the environment variable CI is set.
"""

import base64
import fcntl
import importlib.util
import json
import os
import select
import shutil
import signal
import statistics
import struct
import sys
import tempfile
import time
import unittest

KERNEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "brig_kernel.py")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _high_fd(fd):
    """Move fd to a number >= 10 (close-on-exec), so dup2 onto 1-4 in the child is safe."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


class KernelProcess:
    """A kernel child with pipes on fds 1, 2, 3, 4, as the Brig agent launches it."""

    def __init__(self, *args, cwd=None):
        self.tmp = tempfile.mkdtemp(prefix="brig-kernel-test-")
        req_r, self.req_w = map(_high_fd, os.pipe())
        self.evt_r, evt_w = map(_high_fd, os.pipe())
        self.out_r, out_w = map(_high_fd, os.pipe())
        self.err_r, err_w = map(_high_fd, os.pipe())
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_DUP2, err_w, 2),
            (os.POSIX_SPAWN_DUP2, req_r, 3),
            (os.POSIX_SPAWN_DUP2, evt_w, 4),
        ]
        argv = [sys.executable, "-I", "-u", KERNEL, *args]
        old_cwd = os.getcwd()
        os.chdir(cwd or self.tmp)  # posix_spawn has no cwd action before Python 3.13
        try:
            self.started = time.perf_counter()
            self.pid = os.posix_spawn(sys.executable, argv, dict(os.environ),
                                      file_actions=actions)
        finally:
            os.chdir(old_cwd)
        for fd in (req_r, evt_w, out_w, err_w):
            os.close(fd)
        for fd in (self.out_r, self.err_r):
            os.set_blocking(fd, False)
        self.evt_buf = b""
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.returncode = None
        self.ready = self.next_event(timeout=60)
        self.ready_seconds = time.perf_counter() - self.started

    # -- raw I/O --

    def send_raw(self, data):
        view = memoryview(data)
        while view:
            view = view[os.write(self.req_w, view):]

    def send(self, request):
        self.send_raw((json.dumps(request) + "\n").encode())

    def _drain(self, fd, sink):
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return
            if not chunk:
                return
            sink += chunk

    def next_event(self, timeout=30):
        """The next event line from fd 4, reading stdout/stderr meanwhile."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.evt_buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no event from kernel within %ss" % timeout)
            ready, _, _ = select.select([self.evt_r, self.out_r, self.err_r], [], [], remaining)
            if self.out_r in ready:
                self._drain(self.out_r, self.stdout)
            if self.err_r in ready:
                self._drain(self.err_r, self.stderr)
            if self.evt_r in ready:
                chunk = os.read(self.evt_r, 65536)
                if not chunk:
                    raise EOFError("kernel closed its event pipe; stderr: %r"
                                   % bytes(self.stderr))
                self.evt_buf += chunk
        line, self.evt_buf = self.evt_buf.split(b"\n", 1)
        return json.loads(line)

    def take_output(self):
        """(stdout, stderr) received so far, after a non-blocking drain; then cleared."""
        self._drain(self.out_r, self.stdout)
        self._drain(self.err_r, self.stderr)
        out, err = bytes(self.stdout), bytes(self.stderr)
        self.stdout.clear()
        self.stderr.clear()
        return out, err

    # -- requests --

    def start(self, code, cell_id="c"):
        self.send({"op": "execute", "id": cell_id, "code": code})

    def collect(self, cell_id="c", timeout=30):
        """Events up to and including the cell's done, plus its output."""
        events = []
        while True:
            event = self.next_event(timeout)
            events.append(event)
            if event["type"] == "done":
                assert event["id"] == cell_id, event
                out, err = self.take_output()
                return events, out, err

    def execute(self, code, cell_id="c", timeout=30):
        """(events, stdout bytes, stderr bytes); the last event is the done event."""
        self.start(code, cell_id)
        return self.collect(cell_id, timeout)

    def done(self, code, **kwargs):
        return self.execute(code, **kwargs)[0][-1]

    def wait(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                return self.returncode
            time.sleep(0.01)
        raise TimeoutError("kernel did not exit")

    def close(self):
        if self.returncode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait()
        for fd in (self.req_w, self.evt_r, self.out_r, self.err_r):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def require(module):
    """Skip (printing SKIP:) when module is missing; fail instead under CI."""
    if importlib.util.find_spec(module) is not None:
        return
    message = "%s is not installed for %s" % (module, sys.executable)
    if os.environ.get("CI"):
        raise AssertionError(message)
    print("SKIP: " + message)
    raise unittest.SkipTest(message)


def png_size(data):
    """(width, height) from a PNG's IHDR chunk."""
    assert data.startswith(PNG_MAGIC), data[:16]
    length, chunk_type, width, height = struct.unpack(">I4sII", data[8:24])
    assert chunk_type == b"IHDR", chunk_type
    return width, height


class KernelTestCase(unittest.TestCase):
    args = ()

    def setUp(self):
        self.kernel = KernelProcess(*self.args)
        self.addCleanup(self.kernel.close)
        self.assertEqual(self.kernel.ready["type"], "ready")

    def assertPng(self, data_b64):
        data = base64.b64decode(data_b64, validate=True)
        width, height = png_size(data)
        self.assertTrue(10 <= width <= 5000 and 10 <= height <= 5000, (width, height))
        return width, height


class TestProtocol(KernelTestCase):
    def test_ready_event(self):
        ready = self.kernel.ready
        self.assertEqual(ready["protocol"], 1)
        self.assertEqual(ready["python"], "%d.%d.%d" % sys.version_info[:3])
        self.assertEqual(ready["preloaded"], [])
        self.assertNotIn("preload_failed", ready)

    def test_ping(self):
        self.kernel.send({"op": "ping", "id": "p1"})
        self.assertEqual(self.kernel.next_event(), {"type": "pong", "id": "p1"})

    def test_protocol_errors_keep_kernel_alive(self):
        self.kernel.send_raw(b"this is not json\n")
        self.assertEqual(self.kernel.next_event()["type"], "protocol_error")
        self.kernel.send({"op": "frobnicate", "id": "x"})
        event = self.kernel.next_event()
        self.assertEqual(event["type"], "protocol_error")
        self.assertIn("frobnicate", event["message"])
        self.kernel.send_raw(b"[1, 2]\n\n")
        self.assertEqual(self.kernel.next_event()["type"], "protocol_error")
        self.kernel.send({"op": "execute", "id": "e"})  # no code
        self.assertEqual(self.kernel.next_event()["type"], "protocol_error")
        self.assertEqual(self.kernel.done("1 + 1")["result"], {"text/plain": "2"})

    def test_eof_exits_zero(self):
        os.close(self.kernel.req_w)
        self.assertEqual(self.kernel.wait(), 0)

    def test_shutdown_exits_zero(self):
        self.kernel.send({"op": "shutdown"})
        self.assertEqual(self.kernel.wait(), 0)

    def test_request_split_across_writes_and_batched(self):
        line = json.dumps({"op": "execute", "id": "a", "code": "x = 'é' * 3\nx"}).encode()
        self.kernel.send_raw(line[:7])
        time.sleep(0.05)
        ping = json.dumps({"op": "ping", "id": "b"}).encode()
        self.kernel.send_raw(line[7:] + b"\n" + ping + b"\n")
        done = self.kernel.next_event()
        self.assertEqual(done["result"], {"text/plain": "'ééé'"})
        self.assertEqual(self.kernel.next_event(), {"type": "pong", "id": "b"})

    def test_large_cell(self):
        code = "data = [\n" + "    1,\n" * 200000 + "]\nlen(data)"
        self.assertEqual(self.kernel.done(code, timeout=60)["result"],
                         {"text/plain": "200000"})


class TestExecution(KernelTestCase):
    def test_state_persists_across_cells(self):
        self.assertEqual(self.kernel.done("import math\nx = 41\ndef f(y):\n    return y + 1")
                         ["status"], "ok")
        done = self.kernel.done("f(x), math.pi > 3")
        self.assertEqual(done["result"], {"text/plain": "(42, True)"})

    def test_done_fields(self):
        events, out, err = self.kernel.execute("y = 1", cell_id="id-7")
        self.assertEqual(events, [{"type": "done", "id": "id-7", "status": "ok",
                                   "result": None, "error": None, "outputs_count": 0}])

    def test_stdout_and_stderr_pipes(self):
        code = ("import sys\nprint('to out')\nsys.stderr.write('to err\\n')\n"
                "print('ünïcode', file=sys.stderr)")
        events, out, err = self.kernel.execute(code)
        self.assertEqual(events[-1]["status"], "ok")
        self.assertEqual(out, b"to out\n")
        self.assertEqual(err, "to err\nünïcode\n".encode())

    def test_os_write_and_subprocess_output(self):
        code = ("import os, subprocess, sys\nos.write(1, b'raw1\\n')\nos.write(2, b'raw2\\n')\n"
                "subprocess.run(['/bin/sh', '-c', 'echo sub-out; echo sub-err >&2'])\n"
                "subprocess.run([sys.executable, '-c', 'print(\"child\")'])\n")
        events, out, err = self.kernel.execute(code)
        self.assertEqual(events[-1]["status"], "ok")
        self.assertEqual(out, b"raw1\nsub-out\nchild\n")
        self.assertEqual(err, b"raw2\nsub-err\n")

    def test_protocol_fds_not_inherited(self):
        probe = ("import os; print(*[fd for fd in (1, 2, 3, 4) "
                 "if os.path.exists('/proc/self/fd/%d' % fd)])")
        code = ("import shlex, subprocess, sys\n"
                "subprocess.run([sys.executable, '-c', %r], close_fds=False)\n"
                "os.system(sys.executable + ' -c ' + shlex.quote(%r))" % (probe, probe))
        events, out, err = self.kernel.execute("import os\n" + code)
        self.assertEqual(events[-1]["status"], "ok", events)
        self.assertEqual(out, b"1 2\n1 2\n")  # the children see fds 1 and 2, not 3 and 4

    def test_last_expression_results(self):
        k = self.kernel
        self.assertEqual(k.done("40 + 2")["result"], {"text/plain": "42"})
        self.assertEqual(k.done("_ * 2")["result"], {"text/plain": "84"})
        self.assertIsNone(k.done("None")["result"])
        self.assertIsNone(k.done("print('x')")["result"])
        self.assertIsNone(k.done("z = 5\nz;")["result"])
        self.assertIsNone(k.done("z ;  # comment")["result"])
        self.assertEqual(k.done("z; 'a;b'")["result"], {"text/plain": "'a;b'"})
        self.assertEqual(k.done("if True:\n    pass\nz")["result"], {"text/plain": "5"})
        self.assertIsNone(k.done("")["result"])
        self.assertIsNone(k.done("# just a comment\n")["result"])

    def test_result_rich_reprs(self):
        code = '''
class Rich:
    def __repr__(self): return "Rich()"
    def _repr_html_(self): return "<b>rich</b>"
    def _repr_markdown_(self): return "**rich**"
    def _repr_svg_(self): return "<svg></svg>"
    def _repr_png_(self): return b"\\x89PNG fake"
    def _repr_json_(self): return {"a": [1, 2]}
    def _repr_latex_(self): return None
Rich()
'''
        result = self.kernel.done(code)["result"]
        self.assertEqual(result, {
            "text/plain": "Rich()", "text/html": "<b>rich</b>", "text/markdown": "**rich**",
            "image/svg+xml": "<svg></svg>",
            "image/png": base64.b64encode(b"\x89PNG fake").decode(),
            "application/json": {"a": [1, 2]}})

    def test_rich_repr_edge_cases(self):
        k = self.kernel
        # A class object is shown by repr only, even though it has _repr_html_.
        k.done("class H:\n    def _repr_html_(self): return '<i>h</i>'")
        self.assertEqual(k.done("H")["result"], {"text/plain": "<class '__main__.H'>"})
        # A failing _repr_html_ is reported on stderr and skipped.
        events, out, err = k.execute(
            "class B:\n    def _repr_html_(self): raise ValueError('nope')\n"
            "    def __repr__(self): return 'B()'\nB()")
        self.assertEqual(events[-1]["result"], {"text/plain": "B()"})
        self.assertIn(b"nope", err)
        # An object claiming every attribute gets text/plain only.
        done = k.done("class Any:\n    def __getattr__(self, n): return lambda *a, **k: 'x'\n"
                      "    def __repr__(self): return 'Any()'\nAny()")
        self.assertEqual(done["result"], {"text/plain": "Any()"})
        # _repr_mimebundle_ wins; NaN JSON is dropped rather than breaking the protocol.
        done = k.done("class M:\n    def _repr_mimebundle_(self, include=None, exclude=None):\n"
                      "        return {'text/html': '<p>m</p>', 'application/x+json': {'v': 1}}\n"
                      "    def _repr_json_(self): return {'nan': float('nan')}\nM()")
        self.assertEqual(done["result"]["text/html"], "<p>m</p>")
        self.assertEqual(done["result"]["application/x+json"], {"v": 1})
        self.assertNotIn("application/json", done["result"])
        # A repr that raises makes the cell a runtime error.
        done = k.done("class R:\n    def __repr__(self): raise RuntimeError('bad repr')\nR()")
        self.assertEqual(done["status"], "runtime_error")
        self.assertEqual(done["error"]["value"], "bad repr")

    def test_display_builtin(self):
        code = '''
class Html:
    def _repr_html_(self): return "<p>hi</p>"
    def __repr__(self): return "Html()"
display(Html())
display(1, "two")
display({"text/plain": "raw"}, raw=True)
'''
        events, out, err = self.kernel.execute(code)
        displays = [e for e in events if e["type"] == "display"]
        self.assertEqual([d["data"] for d in displays], [
            {"text/plain": "Html()", "text/html": "<p>hi</p>"},
            {"text/plain": "1"}, {"text/plain": "'two'"}, {"text/plain": "raw"}])
        self.assertTrue(all(d["id"] == "c" for d in displays))
        self.assertEqual(events[-1]["outputs_count"], 4)
        self.assertEqual(events[-1]["status"], "ok")

    def test_user_globals_are_clean(self):
        done = self.kernel.done("sorted(globals())")
        names = set(eval(done["result"]["text/plain"]))
        self.assertEqual(names, {"__name__", "__builtins__", "__doc__", "__loader__",
                                 "__package__", "__spec__"})
        done = self.kernel.done("import sys\n(__name__, sys.modules['__main__'].__dict__ is "
                                "globals(), 'display' in dir(__builtins__))")
        self.assertEqual(done["result"]["text/plain"], "('__main__', True, True)")

    def test_pickle_user_class(self):
        done = self.kernel.done("import pickle\nclass P:\n    pass\n"
                                "type(pickle.loads(pickle.dumps(P()))).__name__")
        self.assertEqual(done["result"], {"text/plain": "'P'"})

    def test_import_from_work_dir(self):
        with open(os.path.join(self.kernel.tmp, "helper_mod.py"), "w") as f:
            f.write("VALUE = 'from work dir'\n")
        done = self.kernel.done("import helper_mod\nhelper_mod.VALUE")
        self.assertEqual(done["result"], {"text/plain": "'from work dir'"})

    def test_input_sees_eof(self):
        done = self.kernel.done("input()")
        self.assertEqual(done["status"], "runtime_error")
        self.assertEqual(done["error"]["name"], "EOFError")

    def test_top_level_await(self):
        done = self.kernel.done("import asyncio\nawait asyncio.sleep(0)\n"
                                "async def f():\n    return 7\nawait f()")
        self.assertEqual(done["result"], {"text/plain": "7"})
        # asyncio.run still works in a cell, and the await loop survives it.
        self.assertEqual(self.kernel.done("asyncio.run(f())")["result"], {"text/plain": "7"})
        self.assertEqual(self.kernel.done("await f()")["result"], {"text/plain": "7"})


class TestErrors(KernelTestCase):
    def test_runtime_error(self):
        code = "x = 1\ndef f():\n    raise ValueError('boom')\nf()"
        done = self.kernel.done(code)
        self.assertEqual(done["status"], "runtime_error")
        self.assertIsNone(done["result"])
        error = done["error"]
        self.assertEqual(error["name"], "ValueError")
        self.assertEqual(error["value"], "boom")
        tb = error["traceback"]
        self.assertTrue(tb.startswith("Traceback (most recent call last):\n"), tb)
        self.assertIn('File "<cell-1>", line 4, in <module>\n    f()', tb)
        self.assertIn('File "<cell-1>", line 3, in f\n    raise ValueError(\'boom\')', tb)
        self.assertTrue(tb.endswith("ValueError: boom\n"), tb)
        self.assertNotIn("brig_kernel", tb)
        # The cell ran up to the error, and the kernel goes on.
        self.assertEqual(self.kernel.done("x")["result"], {"text/plain": "1"})

    def test_traceback_names_later_cells(self):
        self.kernel.done("def g():\n    return 1 / 0")
        tb = self.kernel.done("\n\ng()")["error"]["traceback"]
        self.assertIn('File "<cell-2>", line 3, in <module>\n    g()', tb)
        self.assertIn('File "<cell-1>", line 2, in g\n    return 1 / 0', tb)
        self.assertIn("ZeroDivisionError: division by zero", tb)

    def test_compile_error(self):
        done = self.kernel.done("x = 1\nprint((x)")
        self.assertEqual(done["status"], "compile_error")
        self.assertEqual(done["error"]["name"], "SyntaxError")
        tb = done["error"]["traceback"]
        self.assertIn('File "<cell-1>", line 2', tb)
        self.assertIn("print((x)", tb)
        self.assertIn("^", tb)
        self.assertIn("SyntaxError:", tb)
        # Nothing of a cell that does not compile runs.
        self.assertEqual(self.kernel.done("x")["status"], "runtime_error")

    def test_indentation_and_tab_errors_are_compile_errors(self):
        done = self.kernel.done("if True:\nprint(1)")
        self.assertEqual((done["status"], done["error"]["name"]),
                         ("compile_error", "IndentationError"))
        done = self.kernel.done("if True:\n\tx = 1\n        y = 2")
        self.assertEqual((done["status"], done["error"]["name"]), ("compile_error", "TabError"))
        done = self.kernel.done("return 5")  # rejected by the compiler, not the parser
        self.assertEqual(done["status"], "compile_error")
        done = self.kernel.done("x = '\0'\n")  # null bytes: ValueError in 3.11
        self.assertEqual(done["status"], "compile_error")

    def test_syntax_error_at_run_time_is_runtime_error(self):
        done = self.kernel.done('exec("(")')
        self.assertEqual(done["status"], "runtime_error")
        self.assertEqual(done["error"]["name"], "SyntaxError")
        self.assertIn('File "<cell-1>", line 1', done["error"]["traceback"])

    def test_system_exit(self):
        k = self.kernel
        events, out, err = k.execute("import sys\nprint('before')\nsys.exit(0)\nprint('after')")
        self.assertEqual(events[-1]["status"], "ok")
        self.assertEqual(out, b"before\n")
        self.assertEqual(k.done("raise SystemExit")["status"], "ok")
        done = k.done("import sys\nsys.exit(3)")
        self.assertEqual(done["status"], "runtime_error")
        self.assertEqual((done["error"]["name"], done["error"]["value"]), ("SystemExit", "3"))
        self.assertEqual(k.done("exit('bye')")["status"], "runtime_error")
        self.assertEqual(k.done("1")["result"], {"text/plain": "1"})

    def test_chained_exception(self):
        code = "try:\n    {}['k']\nexcept KeyError as e:\n    raise RuntimeError('wrapped') from e"
        tb = self.kernel.done(code)["error"]["traceback"]
        self.assertIn("KeyError: 'k'", tb)
        self.assertIn("direct cause", tb)
        self.assertIn("RuntimeError: wrapped", tb)


class TestInterrupts(KernelTestCase):
    def test_sigint_interrupts_cell_and_keeps_state(self):
        k = self.kernel
        self.assertEqual(k.done("keep = [1, 2, 3]")["status"], "ok")
        k.start("import time\nprint('started', flush=True)\ntime.sleep(10)\nkeep = None")
        deadline = time.monotonic() + 10
        while b"started\n" not in k.stdout and time.monotonic() < deadline:
            select.select([k.out_r], [], [], 0.1)
            k._drain(k.out_r, k.stdout)
        time.sleep(0.1)  # let the kernel get from print() into time.sleep()
        started = time.perf_counter()
        os.kill(k.pid, signal.SIGINT)
        events, out, err = k.collect(timeout=5)
        self.assertLess(time.perf_counter() - started, 2)
        done = events[-1]
        self.assertEqual(done["status"], "interrupted")
        self.assertEqual(done["error"]["name"], "KeyboardInterrupt")
        tb = done["error"]["traceback"]
        self.assertIn('File "<cell-2>", line 3, in <module>\n    time.sleep(10)', tb)
        self.assertNotIn("brig_kernel", tb)
        self.assertEqual(k.done("keep")["result"], {"text/plain": "[1, 2, 3]"})

    def test_sigint_while_idle_is_harmless(self):
        k = self.kernel
        k.done("v = 'alive'")
        for _ in range(3):
            os.kill(k.pid, signal.SIGINT)
            time.sleep(0.05)
        k.send({"op": "ping", "id": "p"})
        self.assertEqual(k.next_event(), {"type": "pong", "id": "p"})
        self.assertEqual(k.done("v")["result"], {"text/plain": "'alive'"})
        self.assertIsNone(k.returncode)

    def test_sigint_during_large_event_writes_never_splits_an_event(self):
        # 1 MB display events block in write() on the 64 KiB pipe, so the SIGINT lands
        # mid-event; the kernel must finish the line before raising KeyboardInterrupt.
        k = self.kernel
        for round_no in range(5):
            k.start("while True:\n    display({'text/plain': 'x' * 1000000}, raw=True)",
                    cell_id=str(round_no))
            self.assertEqual(k.next_event()["type"], "display")
            select.select([k.evt_r], [], [], 0.01)
            os.kill(k.pid, signal.SIGINT)
            events, out, err = k.collect(cell_id=str(round_no), timeout=30)
            for event in events[:-1]:  # every line parsed; each display is whole
                self.assertEqual(len(event["data"]["text/plain"]), 1000000)
            self.assertEqual(events[-1]["status"], "interrupted")
            self.assertEqual(events[-1]["outputs_count"], len(events))
        self.assertEqual(k.done("1")["status"], "ok")

    def test_user_changes_to_sigint_are_undone(self):
        k = self.kernel
        self.assertEqual(k.done("import signal\nsignal.signal(signal.SIGINT, signal.SIG_DFL)")
                         ["status"], "ok")
        os.kill(k.pid, signal.SIGINT)
        time.sleep(0.05)
        self.assertEqual(k.done("2")["result"], {"text/plain": "2"})


class TestRobustness(KernelTestCase):
    def test_user_replacing_stdout(self):
        k = self.kernel
        events, out, err = k.execute("import io, sys\nsys.stdout = io.StringIO()\n"
                                     "sys.stderr = io.StringIO()\nprint('hidden')")
        self.assertEqual((out, err), (b"", b""))
        events, out, err = k.execute("print('visible')")
        self.assertEqual(out, b"visible\n")
        self.assertEqual(events[-1]["status"], "ok")

    def test_user_closing_stdout_and_fds(self):
        k = self.kernel
        self.assertEqual(k.done("import sys\nsys.stdout.close()\nsys.stderr.close()")
                         ["status"], "ok")
        self.assertEqual(k.execute("print('again')")[1], b"again\n")
        k.done("import os\nos.close(1)\nos.dup2(os.open(os.devnull, os.O_WRONLY), 2)")
        events, out, err = k.execute("import sys\nprint('back')\nprint('err', file=sys.stderr)")
        self.assertEqual((out, err), (b"back\n", b"err\n"))

    def test_fork_child_does_not_serve_requests(self):
        k = self.kernel
        done = k.done("import os\npid = os.fork()\n'parent' if pid else 'child'")
        self.assertEqual(done["result"], {"text/plain": "'parent'"})
        k.send({"op": "ping", "id": "p"})
        self.assertEqual(k.next_event(), {"type": "pong", "id": "p"})
        time.sleep(0.2)
        self.assertNotIn(b"\n", k.evt_buf)  # nothing extra from the child

    def test_display_after_replacing_builtin(self):
        k = self.kernel
        k.done("import builtins\ndel builtins.display")
        events, _, _ = k.execute("display(1)")
        self.assertEqual(events[-1]["outputs_count"], 1)


class TestPreloadFailure(KernelTestCase):
    args = ("--preload", "no_such_module_xyz,json")

    def test_preload_failure_still_ready(self):
        ready = self.kernel.ready
        self.assertEqual(ready["preloaded"], ["json"])
        self.assertIn("no_such_module_xyz", ready["preload_failed"])
        self.assertIn("ModuleNotFoundError", ready["preload_failed"]["no_such_module_xyz"])
        self.assertEqual(self.kernel.done("1")["status"], "ok")


class TestScientific(KernelTestCase):
    """numpy/pandas/matplotlib imported by user code in a non-preloaded kernel."""

    def test_pandas_dataframe(self):
        require("pandas")
        done = self.kernel.done("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})")
        self.assertEqual(done["status"], "ok")
        result = done["result"]
        self.assertEqual(set(result), {"text/plain", "text/html"})
        self.assertIn("a  b", result["text/plain"])
        self.assertIn("<table", result["text/html"])

    def test_plt_show_and_open_figure(self):
        require("matplotlib")
        k = self.kernel
        code = ("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [3, 1, 2])\nplt.show()\n"
                "fig, ax = plt.subplots(figsize=(3, 2), dpi=100)\nax.bar([1, 2], [3, 4])\n"
                "print('backend', plt.get_backend())")
        events, out, err = k.execute(code)
        done = events[-1]
        self.assertEqual(done["status"], "ok", done)
        displays = [e["data"] for e in events if e["type"] == "display"]
        self.assertEqual(len(displays), 2)
        self.assertEqual(done["outputs_count"], 2)
        self.assertEqual(self.assertPng(displays[0]["image/png"]), (640, 480))
        self.assertEqual(self.assertPng(displays[1]["image/png"]), (300, 200))
        self.assertTrue(displays[0]["text/plain"].startswith("<Figure size 640x480"))
        self.assertEqual(out, b"backend agg\n")
        self.assertNotIn(b"non-GUI", err)
        self.assertEqual(k.done("plt.get_fignums()")["result"], {"text/plain": "[]"})

    def test_figure_as_result_and_display_not_duplicated(self):
        require("matplotlib")
        k = self.kernel
        events, _, _ = k.execute("import matplotlib.pyplot as plt\nfig = plt.figure()\n"
                                 "plt.plot([1, 2])\nfig")
        self.assertEqual(events[-1]["outputs_count"], 0)
        self.assertPng(events[-1]["result"]["image/png"])
        events, _, _ = k.execute("fig2 = plt.figure()\ndisplay(fig2)")
        self.assertEqual(events[-1]["outputs_count"], 1)
        self.assertEqual(k.done("plt.get_fignums()")["result"], {"text/plain": "[]"})

    def test_figure_rendering_error(self):
        require("matplotlib")
        k = self.kernel
        done = k.done("import matplotlib.pyplot as plt\nplt.figure()\n"
                      "plt.text(0.5, 0.5, '$\\\\frac{$')")  # bad mathtext fails at draw time
        self.assertEqual(done["status"], "runtime_error")
        self.assertEqual(k.done("plt.get_fignums()")["result"], {"text/plain": "[]"})

    def test_figures_emitted_after_error(self):
        require("matplotlib")
        events, _, _ = self.kernel.execute("import matplotlib.pyplot as plt\nplt.plot([1])\n1/0")
        self.assertEqual(events[-1]["status"], "runtime_error")
        self.assertEqual(events[-1]["outputs_count"], 1)

    def test_numpy_result(self):
        require("numpy")
        done = self.kernel.done("import numpy as np\nnp.arange(3)")
        self.assertEqual(done["result"], {"text/plain": "array([0, 1, 2])"})


class TestPreloaded(KernelTestCase):
    args = ("--preload", "numpy,pandas,matplotlib")

    def setUp(self):
        for module in ("numpy", "pandas", "matplotlib"):
            require(module)
        super().setUp()

    def test_preloaded_kernel(self):
        k = self.kernel
        print("\n  preloaded kernel ready in %.0f ms" % (k.ready_seconds * 1000))
        self.assertEqual(k.ready["preloaded"], ["numpy", "pandas", "matplotlib"])
        self.assertNotIn("preload_failed", k.ready)
        # Preloading does not put names in the user's namespace.
        self.assertEqual(k.done("'np' in globals(), 'plt' in globals()")["result"],
                         {"text/plain": "(False, False)"})
        started = time.perf_counter()
        events, _, _ = k.execute("import matplotlib.pyplot as plt\n"
                                 "plt.plot([1, 2, 3], [1, 4, 9])\nplt.show()")
        elapsed = time.perf_counter() - started
        print("  time to first figure (preloaded): %.1f ms" % (elapsed * 1000))
        self.assertEqual(events[-1]["outputs_count"], 1)
        self.assertPng(events[0]["data"]["image/png"])
        started = time.perf_counter()
        k.execute("plt.plot([1, 2, 3], [1, 4, 9])\nplt.show()")
        print("  second figure: %.1f ms" % ((time.perf_counter() - started) * 1000))


class TestTimings(unittest.TestCase):
    """Measurements printed, not asserted."""

    def test_print_round_trip(self):
        kernel = KernelProcess()
        self.addCleanup(kernel.close)
        print("\n  minimal kernel ready in %.1f ms" % (kernel.ready_seconds * 1000))
        samples = []
        for i in range(50):
            started = time.perf_counter()
            events, out, _ = kernel.execute("print(1)", cell_id=str(i))
            samples.append(time.perf_counter() - started)
            self.assertEqual(out, b"1\n")
        print("  print(1) round trip: median %.3f ms, min %.3f ms, max %.3f ms (50 cells)"
              % (statistics.median(samples) * 1e3, min(samples) * 1e3, max(samples) * 1e3))

    def test_cold_first_figure(self):
        require("matplotlib")
        kernel = KernelProcess()
        self.addCleanup(kernel.close)
        started = time.perf_counter()
        events, _, _ = kernel.execute("import matplotlib.pyplot as plt\n"
                                      "plt.plot([1, 2, 3], [1, 4, 9])\nplt.show()")
        print("\n  time to first figure (cold, pyplot not preloaded): %.1f ms"
              % ((time.perf_counter() - started) * 1000))
        self.assertEqual(events[-1]["outputs_count"], 1)


if __name__ == "__main__":
    unittest.main()
