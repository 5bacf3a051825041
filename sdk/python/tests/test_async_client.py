"""The asyncio client against a real `brig serve`."""

import asyncio
import unittest

import brig_server
from brig_client import AsyncBrig, AuthenticationError, NotFoundError, ResultEvent, StdoutEvent

server = None


def setUpModule():
    global server
    server = brig_server.get()


class AsyncClientTest(unittest.TestCase):
    def run_async(self, coro):
        return asyncio.run(asyncio.wait_for(coro, 300))

    def test_run_and_concurrency(self):
        async def go():
            async with AsyncBrig(server.url, api_key=server.api_key) as brig:
                results = await asyncio.gather(*(brig.run(f"print({i} * 2)") for i in range(3)))
                return [r.stdout for r in results], [r.ok for r in results]

        stdout, ok = self.run_async(go())
        self.assertEqual(stdout, ["0\n", "2\n", "4\n"])
        self.assertEqual(ok, [True, True, True])

    def test_session_files_and_events(self):
        async def go():
            async with AsyncBrig(server.url, api_key=server.api_key) as brig:
                async with brig.session() as s:
                    await s.write_file("in.bin", b"\x00\x10\xff")
                    data = await s.read_file("in.bin")
                    names = (await s.list_files()).names()
                    await s.run_code("y = 5")
                    second = await s.run_code("y * 3")
                    execution = await s.run_code_async("for i in range(2): print(i, flush=True)\ny")
                    events = [e async for e in execution.events(timeout=60)]
                    streamed = [e async for e in s.stream_code("print('s')")]
                    sid = s.id
                info = (await brig.get_session(sid)).info
                return data, names, second, events, streamed, info

        data, names, second, events, streamed, info = self.run_async(go())
        self.assertEqual(data, b"\x00\x10\xff")
        self.assertIn("in.bin", names)
        self.assertEqual(second.result_text, "15")
        self.assertIsInstance(events[-1], ResultEvent)
        self.assertEqual("".join(e.text for e in events if isinstance(e, StdoutEvent)), "0\n1\n")
        self.assertEqual(events[-1].result.result_text, "5")
        self.assertEqual(streamed[-1].result.stdout, "s\n")
        self.assertEqual(info.status, "ended")

    def test_errors(self):
        async def go():
            async with AsyncBrig(server.url, api_key="brig_wrong") as bad:
                try:
                    await bad.sessions()
                except AuthenticationError as e:
                    auth = e
            async with AsyncBrig(server.url, api_key=server.api_key) as brig:
                try:
                    await brig.get_session("missing")
                except NotFoundError as e:
                    missing = e
            return auth, missing

        auth, missing = self.run_async(go())
        self.assertEqual(auth.status, 401)
        self.assertEqual(missing.status, 404)


if __name__ == "__main__":
    unittest.main()
