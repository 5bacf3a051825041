"""Brig's Python kernel: one persistent interpreter that executes cells for a session.

The in-sandbox agent launches it as

    /usr/bin/python3 -I -u /etc/brig/brig_kernel.py [--preload numpy,pandas,matplotlib]

with the work dir as cwd and these file descriptors:

    fd 0  /dev/null (``input()`` sees EOF)
    fd 1  the running cell's stdout  } pipes read and streamed by the agent; whatever lands
    fd 2  the running cell's stderr  } there while a cell runs is that cell's output
    fd 3  requests: JSON lines from the agent
    fd 4  events: JSON lines to the agent

Each request and event is one JSON object on one ``\\n``-terminated UTF-8 line. Events are
written whole (one ``os.write`` loop under a lock), after flushing ``sys.stdout`` and
``sys.stderr``, so output written before an event is in the pipe before the event is.

Protocol version 1
------------------
On start, after preloading:
    {"type": "ready", "protocol": 1, "python": "3.11.2", "preloaded": ["numpy", ...],
     "preload_failed": {"name": "ModuleNotFoundError: ..."}}   # key present only on failure

Requests and their answers:
    {"op": "execute", "id": "<str>", "code": "<str>"}
        -> zero or more {"type": "display", "id": ..., "data": {<mime>: <data>, ...}}
        -> exactly one  {"type": "done", "id": ..., "status": S, "result": R, "error": E,
                         "outputs_count": N}
    {"op": "ping", "id": ...}  -> {"type": "pong", "id": ...}
    {"op": "shutdown"}, or EOF on fd 3 -> exit status 0
    anything else -> {"type": "protocol_error", "message": "...", "id": <id if the request had one>}

``S`` is "ok", "runtime_error" (an exception, or ``SystemExit`` with a non-zero code),
"compile_error" (the cell does not compile: ``SyntaxError`` and its subclasses, or any other
error raised while compiling it) or "interrupted" (``KeyboardInterrupt`` reached the top of
the cell; the agent sends SIGINT on timeout). SIGINT while idle is ignored.

``R`` is null or the value of the cell's last expression as a Jupyter-style mime bundle:
"text/plain" is ``repr(value)``; "text/html", "text/markdown", "text/latex",
"image/svg+xml", "image/png", "image/jpeg" and "application/json" come from the
``_repr_*_`` methods (and ``_repr_mimebundle_``) when present and not None. Binary data
(PNG, JPEG) is base64 text; JSON mime types carry a JSON value, not a string. A value of
None, or a last line ending in ``;``, gives null. ``_`` is set to a displayed value.

``E`` is null or {"name": "ValueError", "value": "boom", "traceback": "<as Python prints it>"};
cells are compiled as ``<cell-N>`` and registered in ``linecache`` so tracebacks show their
lines. For a compile error the traceback is the usual SyntaxError caret display.

``N`` counts the display events sent for the cell: ``display(obj)`` (a builtin), and
matplotlib figures. Matplotlib is forced onto the Agg backend (``MPLBACKEND=Agg``);
``plt.show()`` emits every open figure as image/png + text/plain and closes it, and at the
end of each cell any figure still open is emitted and closed (only if pyplot was imported).

User code runs in one persistent namespace, the ``__main__`` module (``sys.modules``
points at it, so pickle and typing see user classes). The kernel's own names stay out of it.
After each cell the kernel restores fds 1/2, ``sys.stdout``/``sys.stderr``, its SIGINT
handler and the ``display`` builtin, whatever the cell did to them.

Only the standard library is imported at start; numpy, pandas and matplotlib are imported
only when preloaded or when user code imports them.
"""

import ast
import base64
import builtins
import io
import json
import linecache
import os
import signal
import sys
import traceback
import types
import _thread

PROTOCOL = 1
REQUEST_FD = 3
EVENT_FD = 4
READ_SIZE = 1 << 16
CO_COROUTINE = 0x0080  # inspect.CO_COROUTINE, without importing inspect
KERNEL_FILE = __file__

# (mime type, method) in the order Jupyter's formatters try them.
RICH_REPRS = (
    ("text/html", "_repr_html_"),
    ("text/markdown", "_repr_markdown_"),
    ("text/latex", "_repr_latex_"),
    ("image/svg+xml", "_repr_svg_"),
    ("image/png", "_repr_png_"),
    ("image/jpeg", "_repr_jpeg_"),
    ("application/json", "_repr_json_"),
)
# An attribute no real object has: objects that claim it claim every name (mocks, proxies).
CANARY = "_ipython_canary_method_should_not_exist_"


class _State:
    """Everything the kernel keeps between requests (one instance, ``STATE``)."""

    def __init__(self):
        self.pid = os.getpid()
        self.main_thread = _thread.get_ident()
        self.user_module = None
        self.kernel_module = None  # keeps this module alive once __main__ is the user's
        self.stdout = None
        self.stderr = None
        self.saved_fds = {}  # 1/2 -> a close-on-exec duplicate taken at start
        self.cell_count = 0
        self.cell_id = None  # id of the running cell; None while idle
        self.outputs = 0
        self.rendered = []  # figures already sent this cell (display() or result)
        self.interruptible = False  # SIGINT raises KeyboardInterrupt only when True
        self.writer = None  # thread writing an event right now
        self.pending_interrupt = False
        self.send_lock = _thread.allocate_lock()
        self.loop = None  # asyncio loop for top-level await, made on first use


STATE = _State()


# --- events ---------------------------------------------------------------------------


def _encode(event):
    """One event as a UTF-8 JSON line (lone surrogates become '?', never invalid UTF-8)."""
    text = json.dumps(event, ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                      default=str)
    return (text + "\n").encode("utf-8", "replace")


def _flush_std():
    """Flush whatever sys.stdout/sys.stderr are now, ignoring user objects that fail."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _send(event):
    """Write one event to fd 4, whole, after flushing the user's output.

    A SIGINT arriving mid-write is deferred until the line is complete, so a timeout can
    never leave half an event on the pipe.
    """
    data = _encode(event)
    _flush_std()
    with STATE.send_lock:
        STATE.writer = _thread.get_ident()
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(EVENT_FD, view):]
        finally:
            STATE.writer = None
    if STATE.pending_interrupt and _thread.get_ident() == STATE.main_thread:
        STATE.pending_interrupt = False
        if STATE.interruptible:
            raise KeyboardInterrupt


def _on_sigint(signum, frame):
    """SIGINT handler: interrupt a running cell, ignore the signal while idle."""
    if not STATE.interruptible:
        return
    if STATE.writer == STATE.main_thread:
        STATE.pending_interrupt = True
        return
    raise KeyboardInterrupt


# --- rich display -----------------------------------------------------------------------


def _rich_method(obj, name):
    """``obj.name`` if it is a callable repr method, like IPython's get_real_method."""
    if isinstance(obj, type):
        return None  # a class, whose _repr_html_ is an unbound function
    try:
        method = getattr(obj, name, None)
    except Exception:
        return None
    return method if callable(method) else None


def _call_repr(obj, name, **kwargs):
    """Call a _repr_*_ method; a failure is reported on stderr and gives None."""
    method = _rich_method(obj, name)
    if method is None:
        return None
    try:
        value = method(**kwargs)
    except Exception as exc:
        sys.stderr.write("brig: %s.%s() failed: %s: %s\n"
                         % (type(obj).__name__, name, type(exc).__name__, exc))
        return None
    if isinstance(value, tuple) and len(value) == 2:
        value = value[0]  # (data, metadata)
    return value


def _is_json_mime(mime):
    return mime == "application/json" or mime.endswith("+json")


def _clean_value(mime, value):
    """Mime data as JSON can carry it: base64 for binary, str for text; None to drop it."""
    if _is_json_mime(mime):
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            return None
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        if mime.startswith("text/") or mime == "image/svg+xml":
            return bytes(value).decode("utf-8", "replace")
        return base64.b64encode(value).decode("ascii")
    return value if isinstance(value, str) else None


def _clean_bundle(bundle):
    cleaned = {}
    for mime, value in bundle.items():
        if isinstance(mime, str):
            value = _clean_value(mime, value)
            if value is not None:
                cleaned[mime] = value
    return cleaned


def _as_figure(obj):
    """obj if it is a matplotlib Figure (without importing matplotlib), else None."""
    module = sys.modules.get("matplotlib.figure")
    if module is not None and isinstance(obj, module.Figure):
        return obj
    return None


def _figure_bundle(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    STATE.rendered.append(fig)
    return {"image/png": base64.b64encode(buf.getvalue()).decode("ascii"),
            "text/plain": repr(fig)}


def _mime_bundle(obj):
    """The Jupyter-style mime bundle of obj; an exception from repr(obj) propagates."""
    if _as_figure(obj) is not None:
        return _figure_bundle(obj)
    bundle = {"text/plain": repr(obj)}
    if _rich_method(obj, CANARY) is not None:
        return bundle
    extra = _call_repr(obj, "_repr_mimebundle_", include=None, exclude=None)
    if isinstance(extra, dict):
        bundle.update(_clean_bundle(extra))
    for mime, name in RICH_REPRS:
        if mime not in bundle:
            value = _clean_value(mime, _call_repr(obj, name))
            if value is not None:
                bundle[mime] = value
    return bundle


def _emit_display(data):
    """Send one display event for the running cell (dropped if no cell is running)."""
    cell_id = STATE.cell_id
    if cell_id is None:
        return
    STATE.outputs += 1
    _send({"type": "display", "id": cell_id, "data": data})


def display(*objs, raw=False, **_ignored):
    """Show objects as rich output of the running cell, like IPython's display().

    With raw=True each obj is already a mime bundle ({mime: data}).
    """
    for obj in objs:
        _emit_display(_clean_bundle(obj) if raw else _mime_bundle(obj))


# --- matplotlib ---------------------------------------------------------------------------


def _open_figures():
    helpers = sys.modules.get("matplotlib._pylab_helpers")
    if helpers is None:
        return []
    return [manager.canvas.figure for manager in helpers.Gcf.get_all_fig_managers()]


def _emit_figures(skip_rendered):
    """Send every open pyplot figure as a display event and close it.

    Every figure is closed even if rendering one fails; the first failure is re-raised.
    """
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    failure = None
    for fig in _open_figures():
        try:
            if not (skip_rendered and any(fig is done for done in STATE.rendered)):
                _emit_display(_figure_bundle(fig))
        except Exception as exc:
            failure = failure or exc
        finally:
            plt.close(fig)
    if failure is not None:
        raise failure


def _show(*args, **kwargs):
    """Replacement for ``matplotlib.pyplot.show``: emit and close all open figures."""
    _emit_figures(skip_rendered=False)


def _patch_pyplot(plt):
    if getattr(plt, "show", None) is not _show:
        plt.show = _show


class _PyplotHook:
    """Meta path finder that patches ``matplotlib.pyplot.show`` as soon as pyplot loads,
    so ``plt.show()`` works in the very cell that first imports pyplot."""

    def find_spec(self, name, path, target=None):
        if name != "matplotlib.pyplot":
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                break
        else:
            return None
        exec_module = getattr(spec.loader, "exec_module", None)
        if exec_module is not None:
            def exec_and_patch(module):
                exec_module(module)
                _patch_pyplot(module)
            spec.loader.exec_module = exec_and_patch
        return spec


def _preload_matplotlib():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    _patch_pyplot(plt)
    # Warm-up: the first savefig loads fonts, the PNG writer and their caches.
    fig = plt.figure(figsize=(1, 1))
    fig.gca().plot([0, 1], [0, 1])
    fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)


# --- running a cell ---------------------------------------------------------------------------


def _source_lines(code):
    """The cell's lines split the way the tokenizer counts them (\\n, \\r\\n, \\r)."""
    return code.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _ends_with_semicolon(lines, node):
    """Jupyter's rule: a ';' right after the last expression suppresses its result."""
    line = lines[node.end_lineno - 1].encode("utf-8")[node.end_col_offset:]
    return line.decode("utf-8", "replace").lstrip().startswith(";")


def _compile_cell(code, filename, lines):
    """(exec code or None, eval code for the last expression or None, suppress result)."""
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    tree = compile(code, filename, "exec", ast.PyCF_ONLY_AST | flags, dont_inherit=True)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    body = compile(tree, filename, "exec", flags, dont_inherit=True) if tree.body else None
    expr = None
    if last is not None:
        expr = compile(ast.Expression(last.value), filename, "eval", flags, dont_inherit=True)
    return body, expr, last is not None and _ends_with_semicolon(lines, last)


def _eval(code, namespace):
    """eval, running the coroutine a cell with top-level ``await`` compiles to."""
    result = eval(code, namespace)
    if code.co_flags & CO_COROUTINE:
        import asyncio
        if STATE.loop is None or STATE.loop.is_closed():
            STATE.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(STATE.loop)
        result = STATE.loop.run_until_complete(result)
    return result


def _run_code(body, expr, suppress):
    """Run a compiled cell; the mime bundle of its last expression, or None."""
    namespace = STATE.user_module.__dict__
    if body is not None:
        _eval(body, namespace)
    if expr is None:
        return None
    value = _eval(expr, namespace)
    if value is None or suppress:
        return None
    bundle = _mime_bundle(value)
    namespace["_"] = value
    return bundle


def _interruptible(fn, *args):
    """(fn(*args), None) or (None, exception), with SIGINT raising KeyboardInterrupt meanwhile.

    Any KeyboardInterrupt raised before the flag is cleared lands in the outer except,
    so an interrupt can never escape into the kernel's own loop.
    """
    try:
        try:
            STATE.interruptible = True
            return fn(*args), None
        finally:
            STATE.interruptible = False
    except BaseException as exc:
        return None, exc


def _is_kernel_frame(frame):
    return frame.filename == KERNEL_FILE


def _error_info(exc):
    """{name, value, traceback} of a run-time exception, without the kernel's own frames."""
    tb_exc = traceback.TracebackException(type(exc), exc, exc.__traceback__, compact=True)
    frames = list(tb_exc.stack)
    while frames and _is_kernel_frame(frames[0]):
        frames.pop(0)
    frames = [f for f in frames if not (_is_kernel_frame(f) and f.name == "_on_sigint")]
    tb_exc.stack = traceback.StackSummary.from_list(frames)
    return {"name": type(exc).__name__, "value": _safe_str(exc),
            "traceback": "".join(tb_exc.format())}


def _compile_error_info(exc):
    text = "".join(traceback.format_exception_only(type(exc), exc))
    return {"name": type(exc).__name__, "value": _safe_str(exc), "traceback": text}


def _safe_str(exc):
    try:
        return str(exc)
    except Exception:
        return "<exception str() failed>"


def _outcome(exc, result):
    """(status, result, error) for a cell that raised exc (or None)."""
    if exc is None:
        return "ok", result, None
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", None, _error_info(exc)
    if isinstance(exc, SystemExit) and exc.code in (None, 0):
        return "ok", None, None
    return "runtime_error", None, _error_info(exc)


def _run_cell(code, filename):
    """Compile and run one cell, then emit its figures: (status, result, error)."""
    lines = _source_lines(code)
    linecache.cache[filename] = (len(code), None, [line + "\n" for line in lines], filename)
    compiled, exc = _interruptible(_compile_cell, code, filename, lines)
    if exc is not None:
        if isinstance(exc, KeyboardInterrupt):
            return _outcome(exc, None)
        return "compile_error", None, _compile_error_info(exc)
    result, exc = _interruptible(_run_code, *compiled)
    if "matplotlib.pyplot" in sys.modules:
        _, figure_exc = _interruptible(_emit_figures, True)
        _close_all_figures()
        if exc is None or (isinstance(exc, SystemExit) and exc.code in (None, 0)):
            exc = figure_exc or exc
    return _outcome(exc, result)


def _close_all_figures():
    try:
        sys.modules["matplotlib.pyplot"].close("all")
    except Exception:
        pass


def _execute(request_id, code):
    STATE.cell_count += 1
    STATE.cell_id, STATE.outputs, STATE.rendered = request_id, 0, []
    status, result, error = _run_cell(code, "<cell-%d>" % STATE.cell_count)
    STATE.rendered = []
    _restore_process_state()
    outputs, STATE.cell_id = STATE.outputs, None
    _send({"type": "done", "id": request_id, "status": status, "result": result,
           "error": error, "outputs_count": outputs})


# --- process state --------------------------------------------------------------------------


def _std_stream(fd):
    """An unbuffered UTF-8 text stream on fd that never closes the fd itself."""
    stream = io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8",
                              errors="backslashreplace", write_through=True)
    stream.mode = "w"
    return stream


def _install_std_streams():
    if STATE.stdout is None or STATE.stdout.closed:
        STATE.stdout = _std_stream(1)
    if STATE.stderr is None or STATE.stderr.closed:
        STATE.stderr = _std_stream(2)
    sys.stdout = sys.__stdout__ = STATE.stdout
    sys.stderr = sys.__stderr__ = STATE.stderr


def _restore_process_state():
    """Undo what a cell may have done to the kernel's plumbing."""
    _flush_std()
    if os.getpid() != STATE.pid:
        os._exit(0)  # a fork of the kernel made by user code must not serve requests
    for fd, saved in STATE.saved_fds.items():
        try:
            os.dup2(saved, fd)
        except OSError:
            pass
    _install_std_streams()
    if signal.getsignal(signal.SIGINT) is not _on_sigint:
        signal.signal(signal.SIGINT, _on_sigint)
    builtins.display = display
    if sys.modules.get("__main__") is not STATE.user_module:
        sys.modules["__main__"] = STATE.user_module


def _setup_process():
    os.environ["MPLBACKEND"] = "Agg"
    for fd in (REQUEST_FD, EVENT_FD):
        os.set_inheritable(fd, False)  # children must not hold the protocol pipes
    for fd in (1, 2):
        STATE.saved_fds[fd] = os.dup(fd)  # close-on-exec copy, to undo os.close/dup2
    _install_std_streams()
    signal.signal(signal.SIGINT, _on_sigint)
    builtins.display = display
    sys.meta_path.insert(0, _PyplotHook())
    STATE.kernel_module = sys.modules.get(__name__)
    module = types.ModuleType("__main__")
    module.__builtins__ = builtins
    STATE.user_module = sys.modules["__main__"] = module


def _preload(names):
    """Import names; (preloaded, {name: error}) — a failure is not fatal."""
    done, failed = [], {}
    for name in names:
        try:
            if name == "matplotlib":
                _preload_matplotlib()
            else:
                __import__(name)
            done.append(name)
        except Exception as exc:
            failed[name] = "%s: %s" % (type(exc).__name__, exc)
    return done, failed


def _parse_args(argv):
    """The --preload list (comma separated, --preload X or --preload=X, repeatable)."""
    names, args = [], list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--preload" and args:
            value = args.pop(0)
        elif arg.startswith("--preload="):
            value = arg.split("=", 1)[1]
        else:
            sys.stderr.write("brig_kernel: ignoring argument %r\n" % arg)
            continue
        names.extend(name.strip() for name in value.split(",") if name.strip())
    return names


# --- request loop ---------------------------------------------------------------------------


def _read_requests(fd):
    """Yield request lines (bytes, without the newline) until EOF."""
    parts = []
    while True:
        chunk = os.read(fd, READ_SIZE)
        if not chunk:
            tail = b"".join(parts)
            if tail.strip():
                yield tail
            return
        if b"\n" not in chunk:
            parts.append(chunk)
            continue
        parts.append(chunk)
        *lines, rest = b"".join(parts).split(b"\n")
        parts = [rest] if rest else []
        yield from lines


def _protocol_error(message, request=None):
    event = {"type": "protocol_error", "message": message}
    if isinstance(request, dict) and "id" in request:
        event["id"] = request["id"]
    _send(event)


def _handle(line):
    """Serve one request line; False when the kernel should exit."""
    if not line.strip():
        return True
    try:
        request = json.loads(line)
    except ValueError as exc:
        _protocol_error("request is not valid JSON: %s" % exc)
        return True
    if not isinstance(request, dict):
        _protocol_error("request is not a JSON object")
        return True
    op = request.get("op")
    if op == "execute":
        request_id, code = request.get("id"), request.get("code")
        if not isinstance(request_id, str) or not isinstance(code, str):
            _protocol_error("execute needs a string id and a string code", request)
        else:
            _execute(request_id, code)
    elif op == "ping":
        _send({"type": "pong", "id": request.get("id")})
    elif op == "shutdown":
        return False
    else:
        _protocol_error("unknown op: %r" % (op,), request)
    return True


def main(argv):
    preload = _parse_args(argv)
    _setup_process()
    preloaded, failed = _preload(preload)
    sys.path.insert(0, "")  # user code imports modules from the work dir, like IPython
    ready = {"type": "ready", "protocol": PROTOCOL,
             "python": "%d.%d.%d" % sys.version_info[:3], "preloaded": preloaded}
    if failed:
        ready["preload_failed"] = failed
    _send(ready)
    for line in _read_requests(REQUEST_FD):
        if not _handle(line):
            break
    _flush_std()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
