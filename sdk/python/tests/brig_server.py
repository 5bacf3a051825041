"""Starts one real `brig serve` for the whole test run (from $BRIG_BINARY) and makes a tenant
and an API key through the admin API. No silent skip: a missing binary or a server that does
not start is an error."""

from __future__ import annotations

import atexit
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.request
import uuid
from typing import Optional

ADMIN_KEY = "brig_admin_test_" + uuid.uuid4().hex
START_TIMEOUT_S = 120


class Server:
    def __init__(self) -> None:
        binary = os.environ.get("BRIG_BINARY")
        if not binary:
            raise RuntimeError("BRIG_BINARY is not set: point it at a built `brig` binary")
        if not os.access(binary, os.X_OK):
            raise RuntimeError(f"BRIG_BINARY={binary!r} is not an executable file")
        self.dir = tempfile.mkdtemp(prefix="brig-sdk-test-")
        config = os.path.join(self.dir, "brig.toml")
        with open(config, "w") as f:
            f.write("pool_target_size = 1\npool_min_size = 0\n")
        env = dict(os.environ, BRIG_ADMIN_KEY=ADMIN_KEY)
        self.log_path = os.path.join(self.dir, "server.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [
                binary, "serve",
                "--listen", "127.0.0.1:0",
                "--config", config,
                "--data-dir", os.path.join(self.dir, "data"),
                "--log-format", "text",
            ],
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
        )
        lines: "queue.Queue[Optional[str]]" = queue.Queue()

        def pump() -> None:
            assert self.proc.stdout is not None
            for raw in self.proc.stdout:
                lines.put(raw.decode("utf-8", "replace"))
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        self.url = None
        try:
            while self.url is None:
                line = lines.get(timeout=START_TIMEOUT_S)
                if line is None:
                    raise RuntimeError(f"brig serve exited ({self.proc.wait()}) before listening:\n{self.logs()}")
                found = re.search(r"listening on (http://\S+)", line)
                if found:
                    self.url = found.group(1)
        except queue.Empty:
            self.stop()
            raise RuntimeError(f"brig serve did not listen within {START_TIMEOUT_S}s:\n{self.logs()}")
        except BaseException:
            self.stop()
            raise
        atexit.register(self.stop)
        tenant = self.admin("POST", "/api/v1/tenants", {"name": "sdk-" + uuid.uuid4().hex[:8], "plan": "standard"})
        self.tenant_id = tenant["id"]
        self.api_key = self.admin("POST", f"/api/v1/tenants/{self.tenant_id}/keys", {})["key"]

    def admin(self, method: str, path: str, body: object) -> dict:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def logs(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-8000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if os.environ.get("BRIG_KEEP_TEST_DIR"):
            print(f"kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


_server: Optional[Server] = None


def get() -> Server:
    """The shared server, started on first use."""
    global _server
    if _server is None:
        _server = Server()
    return _server
