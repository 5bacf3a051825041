"""Tests of the zygote's pure parts (stdlib unittest; `cargo test` runs them through
`tests/kernel_py.rs`). The sandbox it builds is tested from Rust: `crates/brig/tests/zygote.rs`."""

import json
import os
import tempfile
import unittest

import brig_zygote as z


class ExitCodes(unittest.TestCase):
    def test_like_the_interpreter(self):
        self.assertEqual(z.exit_code_of(SystemExit()), 0)
        self.assertEqual(z.exit_code_of(SystemExit(None)), 0)
        self.assertEqual(z.exit_code_of(SystemExit(3)), 3)
        self.assertEqual(z.exit_code_of(SystemExit(256 + 7)), 7)
        self.assertEqual(z.exit_code_of(SystemExit(True)), 1)
        self.assertEqual(z.exit_code_of(SystemExit(False)), 0)

    def test_a_message_is_printed_and_exits_1(self):
        import io
        import sys
        saved, sys.stderr = sys.stderr, io.StringIO()
        try:
            self.assertEqual(z.exit_code_of(SystemExit("bye")), 1)
            self.assertEqual(sys.stderr.getvalue(), "bye\n")
        finally:
            sys.stderr = saved


class Files(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.saved = z.WORK
        z.WORK = self.dir

    def tearDown(self):
        z.WORK = self.saved

    def test_files_land_in_the_work_dir_with_their_mode(self):
        z.write_file("pkg/data.bin", b"\x00\x01", 0o600)
        path = os.path.join(self.dir, "pkg/data.bin")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"\x00\x01")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)

    def test_paths_outside_are_refused(self):
        for bad in ("../escape", "a/../../escape", "/etc/passwd"):
            with self.assertRaises(z.SetupError) as caught:
                z.write_file(bad, b"x", 0o644)
            self.assertEqual(caught.exception.stage, "write files")

    def test_a_symlink_is_not_followed(self):
        os.symlink("/etc/passwd", os.path.join(self.dir, "link"))
        with self.assertRaises(OSError):
            z.write_file("link", b"x", 0o644)


class Protocol(unittest.TestCase):
    def test_fds_are_named_in_order(self):
        run = z.Run({"run": 1}, [10, 11, 12, 13, 14, 15, 16])
        self.assertEqual((run.payload, run.stdin, run.stdout, run.stderr), (10, 11, 12, 13))
        self.assertEqual((run.status, run.error, run.life), (14, 15, 16))

    def test_tmpfs_sizes_follow_the_run(self):
        mounts = z.tmpfs_mounts({"disk_bytes": 4096, "shm_bytes": 1024})
        self.assertEqual([m[0] for m in mounts], [z.WORK, "/tmp", "/dev/shm"])
        self.assertIn("size=4096,", mounts[0][2])
        self.assertIn("size=1024,", mounts[2][2])
        self.assertTrue(mounts[2][1] & z.MS_NOEXEC)

    def test_a_run_without_its_prepared_sandbox_is_reported(self):
        r, w = os.pipe()
        run = z.Run({"run": 2}, [-1, -1, -1, -1, -1, w, -1])
        z.dispatch(None, run)
        os.close(w)
        failure = json.loads(os.read(r, 4096))
        os.close(r)
        self.assertEqual(failure["stage"], "zygote")
        self.assertIn("no sandbox was prepared", failure["message"])

    def test_a_setup_failure_is_brigs_json(self):
        r, w = os.pipe()
        z.report(w, "mount /work", "Operation not permitted")
        os.close(w)
        self.assertEqual(json.loads(os.read(r, 4096)),
                         {"stage": "mount /work", "message": "Operation not permitted"})
        os.close(r)

    def test_a_failed_libc_call_names_its_stage_and_errno(self):
        with self.assertRaises(z.SetupError) as caught:
            # Not root in a fresh user namespace here: mounting is refused.
            z.mount("tmpfs", "/nonexistent-brig-test", "tmpfs", 0)
        self.assertEqual(caught.exception.stage, "mount /nonexistent-brig-test")
        self.assertTrue(caught.exception.message)



class Landlock(unittest.TestCase):
    def test_the_plan_is_enforced_in_a_fork(self):
        if z.libc.syscall(z.SYS_LANDLOCK_CREATE_RULESET, None, 0, 1) < 1:
            if os.environ.get("CI") or os.environ.get("BRIG_TEST_STRICT"):
                self.fail("no Landlock on this kernel (CI/BRIG_TEST_STRICT is set)")
            self.skipTest("SKIP: no Landlock on this kernel")
        allowed = tempfile.mkdtemp()
        with open(os.path.join(allowed, "inside"), "w") as f:
            f.write("x")
        read_file = 1 << 2
        plan = {"handled_fs": read_file, "handled_net": 0, "scoped": 0,
                "file_access": read_file,
                "rules": [[allowed, read_file], [os.path.join(allowed, "inside"), read_file],
                          ["/nonexistent-brig-path", read_file]]}
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                z.prctl("no_new_privs", z.PR_SET_NO_NEW_PRIVS, 1)
                z.enforce_landlock(plan)
                with open(os.path.join(allowed, "inside")) as f:
                    f.read()
                try:
                    open("/etc/hostname").read()
                except PermissionError:
                    code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)


if __name__ == "__main__":
    unittest.main()
