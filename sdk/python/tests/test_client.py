"""The synchronous client against a real `brig serve` (see brig_server.py)."""

import unittest
import uuid

import brig_server
from brig_client import (
    AuthenticationError,
    Brig,
    BrigError,
    ConflictError,
    DisplayEvent,
    Limits,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResultEvent,
    StderrEvent,
    StdoutEvent,
    ValidationError,
)

server = None
brig = None


def setUpModule():
    global server, brig
    server = brig_server.get()
    brig = Brig(server.url, api_key=server.api_key)


def tearDownModule():
    if brig is not None:
        brig.close()


class RunTest(unittest.TestCase):
    def test_ok(self):
        r = brig.run("print(6 * 7)")
        self.assertEqual(r.status, "ok", r)
        self.assertTrue(r.ok)
        self.assertEqual(r.stdout, "42\n")
        self.assertEqual(r.exit_code, 0)
        self.assertTrue(r.id)
        self.assertEqual(brig.get_execution(r.id).result.stdout, "42\n")

    def test_runtime_error(self):
        r = brig.run("import sys\nprint('out')\nsys.exit(3)")
        self.assertEqual(r.status, "runtime_error")
        self.assertFalse(r.ok)
        self.assertEqual(r.exit_code, 3)
        self.assertEqual(r.stdout, "out\n")

    def test_syntax_error_is_compile_error(self):
        r = brig.run("print(1")
        self.assertEqual(r.status, "compile_error")
        self.assertIn("SyntaxError", r.stderr)

    def test_other_language_stdin_args(self):
        r = brig.run('read line; echo "got $line and $1"', language="bash", stdin="hello\n", args=["arg1"])
        self.assertEqual(r.status, "ok", r)
        self.assertEqual(r.stdout, "got hello and arg1\n")

    def test_files_text_and_binary(self):
        r = brig.run(
            "print(open('data/in.txt').read().strip()); print(list(open('blob.bin','rb').read()))",
            files={"data/in.txt": "from a file\n", "blob.bin": b"\x00\x01\xff"},
        )
        self.assertEqual(r.status, "ok", r)
        self.assertEqual(r.stdout, "from a file\n[0, 1, 255]\n")

    def test_wall_timeout(self):
        r = brig.run("import time\ntime.sleep(10)", limits=Limits(timeout_ms=500))
        self.assertEqual(r.status, "timeout")
        self.assertEqual(r.limit, "wall")
        self.assertLess(r.wall_ms, 5000)

    def test_limits_above_plan_name_the_field(self):
        with self.assertRaises(ValidationError) as caught:
            brig.run("print(1)", limits={"memory_bytes": 1 << 40})
        self.assertEqual(caught.exception.status, 422)
        self.assertEqual(caught.exception.code, "invalid_request")
        self.assertIn("memory_bytes", caught.exception.message)

    def test_unknown_language(self):
        with self.assertRaises(ValidationError) as caught:
            brig.run("x", language="cobol-2099")
        self.assertIn("language", caught.exception.message)

    def test_network_not_in_plan(self):
        with self.assertRaises(PermissionDeniedError) as caught:
            brig.run("print(1)", network=True)
        self.assertEqual(caught.exception.status, 403)
        self.assertIn("network", caught.exception.message)


class SessionTest(unittest.TestCase):
    def test_state_survives_between_cells(self):
        with brig.session(metadata={"test": "state"}) as s:
            self.assertEqual(s.info.status, "active")
            self.assertEqual(s.info.metadata, {"test": "state"})
            self.assertTrue(s.run_code("x = 40").ok)
            r = s.run_code("x += 2\nx")
            self.assertEqual(r.status, "ok", r)
            self.assertEqual(r.result_text, "42")
            self.assertEqual(r.session_id, s.id)
            self.assertIn(s.id, [i.id for i in brig.sessions()])
        # Left the block: deleted.
        self.assertNotIn(s.id, [i.id for i in brig.sessions()])
        self.assertEqual(brig.get_session(s.id).info.status, "ended")
        with self.assertRaises(ConflictError):
            s.run_code("x")

    def test_cell_exception(self):
        with brig.session() as s:
            r = s.run_code("def f():\n    raise ValueError('bad value')\nf()")
            self.assertEqual(r.status, "runtime_error")
            self.assertEqual(r.error.name, "ValueError")
            self.assertEqual(r.error.value, "bad value")
            self.assertIn("Traceback", r.error.traceback)

    def test_display_outputs(self):
        code = (
            "class Pic:\n"
            "    def _repr_png_(self):\n"
            "        return b'\\x89PNG\\r\\n\\x1a\\nfake'\n"
            "display(Pic())\n"
            "display({'a': 1})\n"
        )
        with brig.session() as s:
            r = s.run_code(code)
            self.assertEqual(r.status, "ok", r)
            self.assertEqual(len(r.outputs), 2, r.outputs)
            self.assertEqual(r.outputs[0].mime, "image/png")
            self.assertEqual(r.outputs[0].png_bytes(), b"\x89PNG\r\n\x1a\nfake")
            self.assertIn(r.outputs[1].mime, ("application/json", "text/plain"))
            if r.outputs[1].mime == "application/json":
                self.assertEqual(r.outputs[1].json(), {"a": 1})
            else:
                self.assertEqual(r.outputs[1].text, "{'a': 1}")

    def test_stdin_and_timeout_ms(self):
        with brig.session(language="bash") as s:
            r = s.run_code("read a; echo \"[$a]\"", stdin="in\n")
            self.assertEqual(r.stdout, "[in]\n", r)
        with brig.session() as s:
            r = s.run_code("import time\ntime.sleep(10)", timeout_ms=500)
            self.assertEqual(r.status, "timeout", r)

    def test_async_events_in_order(self):
        code = (
            "import sys, time\n"
            "for i in range(3):\n"
            "    print(i, flush=True)\n"
            "    time.sleep(0.1)\n"
            "print('warn', file=sys.stderr, flush=True)\n"
            "display({'done': True})\n"
            "'end'"
        )
        with brig.session() as s:
            execution = s.run_code_async(code)
            self.assertTrue(execution.id)
            events = list(execution.events(timeout=60))
            self.assertIsInstance(events[-1], ResultEvent)
            self.assertEqual(sum(isinstance(e, ResultEvent) for e in events), 1)
            stdout = "".join(e.text for e in events if isinstance(e, StdoutEvent))
            stderr = "".join(e.text for e in events if isinstance(e, StderrEvent))
            self.assertEqual(stdout, "0\n1\n2\n")
            self.assertEqual(stderr, "warn\n")
            kinds = [e.type for e in events]
            self.assertLess(max(i for i, k in enumerate(kinds) if k == "stdout"), kinds.index("stderr"))
            self.assertLess(kinds.index("stderr"), kinds.index("display"))
            self.assertIsInstance(events[kinds.index("display")], DisplayEvent)
            result = events[-1].result
            self.assertEqual(result.status, "ok", result)
            self.assertEqual(result.id, execution.id)
            self.assertEqual(result.session_id, s.id)
            self.assertEqual(result.result_text, "'end'")
            self.assertIs(execution.wait(), result)
            # Replayed once finished.
            replay = list(brig.events(execution.id))
            self.assertEqual(replay[-1].result.stdout, "0\n1\n2\n")
            self.assertEqual(brig.get_execution(execution.id).status, "ok")

    def test_stream_code(self):
        with brig.session() as s:
            events = list(s.stream_code("print('streamed')"))
            self.assertEqual("".join(e.text for e in events if isinstance(e, StdoutEvent)), "streamed\n")
            self.assertTrue(events[-1].result.ok)

    def test_cancel(self):
        with brig.session() as s:
            execution = s.run_code_async("import time\nprint('start', flush=True)\ntime.sleep(30)\nprint('never')")
            events = execution.events(timeout=60)
            first = next(events)
            self.assertIsInstance(first, StdoutEvent)
            self.assertTrue(first.text.startswith("start"), first)
            answer = execution.cancel()
            self.assertEqual(answer.execution_id, execution.id)
            rest = list(events)
            result = rest[-1].result
            self.assertEqual(result.status, "cancelled", result)
            self.assertNotIn("never", result.stdout)
            self.assertLess(result.wall_ms, 20000)
            with self.assertRaises(ConflictError):
                execution.cancel()
            # The session is still usable.
            self.assertEqual(s.run_code("1 + 1").result_text, "2")

    def test_files_round_trip(self):
        blob = bytes(range(256)) * 17
        with brig.session() as s:
            s.write_file("dir/sub/blob.bin", blob)
            s.write_file("hello.txt", "héllo")
            self.assertEqual(s.read_file("dir/sub/blob.bin"), blob)
            self.assertEqual(s.read_text("hello.txt"), "héllo")
            listing = s.list_files("dir/sub")
            self.assertEqual([(e.name, e.kind, e.size) for e in listing], [("blob.bin", "file", len(blob))])
            top = s.list_files()
            self.assertIn(("dir", "dir"), [(e.name, e.kind) for e in top])
            self.assertIn("hello.txt", top.names())
            r = s.run_code("open('hello.txt', encoding='utf-8').read() + str(len(open('dir/sub/blob.bin','rb').read()))")
            self.assertEqual(r.result_text, repr("héllo" + str(len(blob))))
            s.run_code("open('made.txt', 'w').write('from code')")
            self.assertEqual(s.read_file("made.txt"), b"from code")
            s.delete_file("dir/sub/blob.bin")
            with self.assertRaises(NotFoundError):
                s.read_file("dir/sub/blob.bin")
            with self.assertRaises(BrigError) as caught:
                s.read_file("../../etc/passwd")
            self.assertIn(caught.exception.status, (404, 422))


class ErrorTest(unittest.TestCase):
    def test_unknown_session(self):
        with self.assertRaises(NotFoundError) as caught:
            brig.get_session("no-such-session")
        self.assertEqual(caught.exception.status, 404)
        self.assertEqual(caught.exception.code, "not_found")
        with self.assertRaises(NotFoundError):
            brig.execution("no-such-execution").get()
        with self.assertRaises(NotFoundError):
            list(brig.events("no-such-execution"))

    def test_bad_key(self):
        with Brig(server.url, api_key="brig_not_a_real_key") as bad:
            with self.assertRaises(AuthenticationError) as caught:
                bad.run("print(1)")
            self.assertEqual(caught.exception.status, 401)
            self.assertEqual(caught.exception.code, "unauthorized")

    def test_admin_route_needs_admin_key(self):
        with self.assertRaises(PermissionDeniedError):
            brig.create_tenant("nope-" + uuid.uuid4().hex[:6])

    def test_session_limit_is_rate_limit_error(self):
        with Brig(server.url, api_key=brig_server.ADMIN_KEY) as admin:
            tenant = admin.create_tenant("free-" + uuid.uuid4().hex[:8], plan="free")
            self.assertEqual(tenant.plan, "free")
            key = admin.create_key(tenant.id)
            self.assertEqual(key.tenant_id, tenant.id)
            self.assertTrue(key.key)
            self.assertIn(tenant.id, [t.id for t in admin.tenants()])
        with Brig(server.url, api_key=key.key) as free:
            with free.session(template="python-minimal"), free.session(template="python-minimal"):
                with self.assertRaises(RateLimitError) as caught:
                    free.create_session(template="python-minimal")
                self.assertEqual(caught.exception.status, 429)
                self.assertIsNotNone(caught.exception.retry_after)
                self.assertGreater(caught.exception.retry_after, 0)

    def test_system(self):
        ids = [lang.id for lang in brig.languages()]
        self.assertIn("python", ids)
        self.assertIn("total_executions", brig.stats())
        self.assertTrue(brig.health())


if __name__ == "__main__":
    unittest.main()
