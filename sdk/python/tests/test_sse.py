"""The SSE parser and the models, without a server."""

import base64
import unittest

from brig_client import DisplayOutput, ExecutionResult, File, Limits, ResultEvent, StdoutEvent
from brig_client._sse import SseDecoder
from brig_client.models import event_from_sse, files_list


def feed_all(chunks):
    decoder = SseDecoder()
    out = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    out.extend(decoder.close())
    return out


class SseTest(unittest.TestCase):
    STREAM = (
        b": keep-alive\n\n"
        b"event: stdout\ndata: {\"text\":\"a\"}\n\n"
        b"event: stderr\r\ndata: {\"text\":\"b\"}\r\n\r\n"
        b"event: result\rdata: {\"status\":\"ok\"}\r\r"
    )
    EXPECTED = [("stdout", '{"text":"a"}'), ("stderr", '{"text":"b"}'), ("result", '{"status":"ok"}')]

    def test_whole_stream(self):
        self.assertEqual(feed_all([self.STREAM]), self.EXPECTED)

    def test_byte_by_byte(self):
        self.assertEqual(feed_all([self.STREAM[i : i + 1] for i in range(len(self.STREAM))]), self.EXPECTED)

    def test_multiline_data_and_default_name(self):
        self.assertEqual(feed_all([b"data: x\ndata:y\n\n"]), [("message", "x\ny")])

    def test_event_without_data_is_not_dispatched(self):
        self.assertEqual(feed_all([b"event: stdout\n\nevent: stderr\ndata: 1\n\n"]), [("stderr", "1")])

    def test_unterminated_event_dropped(self):
        self.assertEqual(feed_all([b"event: stdout\ndata: 1"]), [])

    def test_utf8_split_across_chunks(self):
        data = 'data: {"text":"é"}\n\n'.encode()
        cut = data.index(b"\xc3") + 1
        self.assertEqual(feed_all([data[:cut], data[cut:]]), [("message", '{"text":"é"}')])


class ModelTest(unittest.TestCase):
    def test_result_event_fills_id(self):
        event = event_from_sse("result", '{"status":"runtime_error","error":{"name":"E","value":"v","traceback":"tb"}}', "x1")
        self.assertIsInstance(event, ResultEvent)
        self.assertEqual(event.result.id, "x1")
        self.assertFalse(event.result.ok)
        self.assertEqual(event.result.error.name, "E")

    def test_stdout_event(self):
        self.assertEqual(event_from_sse("stdout", '{"text":"hi"}'), StdoutEvent(text="hi"))
        self.assertIsNone(event_from_sse("future_event", "{}"))

    def test_png_bytes(self):
        png = b"\x89PNG\r\n\x1a\n..."
        out = DisplayOutput.from_json({"mime": "image/png", "data": base64.b64encode(png).decode(), "bundle": {}})
        self.assertEqual(out.png_bytes(), png)
        self.assertIsNone(DisplayOutput.from_json({"mime": "text/plain", "data": "x"}).png_bytes())

    def test_unknown_fields_kept(self):
        r = ExecutionResult.from_json({"status": "ok", "new_field": 1, "outputs": [{"mime": "text/plain", "data": "1"}]})
        self.assertTrue(r.ok)
        self.assertEqual(r.raw["new_field"], 1)
        self.assertEqual(r.outputs[0].text, "1")

    def test_limits_and_files(self):
        self.assertEqual(Limits(timeout_ms=5, pids=None).to_dict(), {"timeout_ms": 5})
        self.assertEqual(
            files_list({"a.txt": "hi", "b.bin": b"\x00"}),
            [
                {"path": "a.txt", "content": "hi", "encoding": "utf8"},
                {"path": "b.bin", "content": "AA==", "encoding": "base64"},
            ],
        )
        self.assertEqual(files_list([File("c", b"\xff")])[0]["content"], "/w==")


if __name__ == "__main__":
    unittest.main()
