"""The app's guards around Gradio, other than the upload route (upload_route.py): which pages are open, which
uploads the requests waiting in the queue name, and one readable sentence for every bad request."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import gradio as gr
from gradio.data_classes import FileData
from gradio.exceptions import InvalidPathError

from .uploads import Uploads

NOT_AN_UPLOAD = (
    "Send the audio as a file uploaded to this app (gradio_client's handle_file, or POST "
    "/gradio_api/upload): web addresses, data: URIs and files that were not uploaded are refused."
)
WRONG_KIND = "This request sent a value of the wrong kind for its endpoint: send what the app's API page describes."
FAILED = "This request could not be answered with the values it sent: send what the app's API page describes."
BAD_REQUEST = (
    "This request names no endpoint of this app, or its body is not what the endpoint takes: see the app's API page."
)
NOT_SERVED = "This upload did not decode as sound, so the app does not serve it back."
FILE_ROUTE = "/file="  # Gradio's file route: GET <api prefix>/file=<path>
MAX_PATH = 4096  # bytes: longer is no path of this app's directory

log = logging.getLogger("webapp.requests")

HEARTBEAT = re.compile(r"/heartbeat/([^/]+)/?$")  # Gradio's heartbeat stream: GET <api prefix>/heartbeat/<session hash>


class PageHeartbeats:
    """A page (a browser tab, a gradio_client Client) is open while its Gradio heartbeat stream is connected:
    tells `uploads` when each opens and closes, so that a page's clip is kept exactly while the page is open."""

    def __init__(self, app, uploads: Uploads):
        self.app, self.uploads = app, uploads

    async def __call__(self, scope, receive, send):
        match = HEARTBEAT.search(scope["path"]) if scope["type"] == "http" and scope.get("method") == "GET" else None
        if match is None:
            return await self.app(scope, receive, send)
        page = match.group(1)
        self.uploads.page_opened(page)
        try:
            await self.app(scope, receive, send)
        finally:
            self.uploads.page_closed(page)


def queued_paths(blocks) -> set[Path]:
    """Every file path named by a request Gradio has accepted and not finished (waiting in its queue or
    running). Raises RuntimeError if the queue changed while it was read."""
    paths: set[Path] = set()

    def collect(value):
        if isinstance(value, dict):
            if isinstance(value.get("path"), str) and "\0" not in value["path"]:
                paths.add(Path(value["path"]))
            for v in value.values():
                collect(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                collect(v)

    queue = getattr(blocks, "_queue", None)
    for event in list(getattr(queue, "event_ids_to_events", {}).values()):
        collect(getattr(getattr(event, "data", None), "data", None))
    return paths


def names_an_upload_or_example(value) -> bool:
    """A file input as Gradio's clients send it ({"path": "/abs/path", ...}) naming a plain absolute path: no
    scheme (http:, file:, ftp:, data:), no leading space, no NUL. Gradio then checks the file was uploaded."""
    path = value.get("path") if isinstance(value, dict) else None
    return (
        isinstance(path, str)
        and path.startswith("/")
        and path == path.strip()
        and "\0" not in path
        and len(path.encode(errors="replace")) <= MAX_PATH
    )


def refusal(sentence: str, endpoint: str, error: Exception | None = None) -> gr.Error:
    """One log line (no traceback, no audio) and the sentence the client sees."""
    detail = f" ({type(error).__name__}: {str(error)[:200]!r})" if error is not None else ""
    log.info("refused: %s: %s%s", endpoint, sentence, detail)
    return gr.Error(sentence, print_exception=False)


class GuardedBlocks(gr.Blocks):
    """gr.Blocks whose every endpoint (documented or not) answers a bad input with one readable sentence and
    one log line. A file input must name an uploaded file or an example: a web address is refused before
    anything happens, so the app never fetches one. A value Gradio cannot convert, or one that makes the
    function fail, gets a sentence instead of a pydantic error, an OS error, a traceback or an object address."""

    async def preprocess_data(self, block_fn, inputs, state, explicit_call=False):
        endpoint = block_fn.api_name or block_fn.name
        for block, value in zip(block_fn.inputs, inputs, strict=False):
            if (
                getattr(block, "data_model", None) is FileData
                and value is not None
                and not names_an_upload_or_example(value)
            ):
                raise refusal(NOT_AN_UPLOAD, endpoint)
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except InvalidPathError as e:  # not uploaded, in a blocked path, a dotfile
            raise refusal(NOT_AN_UPLOAD, endpoint, e) from None
        except Exception as e:  # noqa: BLE001 (pydantic, OS and type errors, a choice not offered, ...)
            if isinstance(e, gr.Error) and not e.print_exception:  # the app's own sentence, already logged
                raise
            raise refusal(WRONG_KIND, endpoint, e) from None

    async def call_function(self, block_fn, *args, **kwargs):
        try:
            return await super().call_function(block_fn, *args, **kwargs)
        except Exception as e:  # noqa: BLE001
            if isinstance(e, gr.Error) and not e.print_exception:
                raise
            raise refusal(FAILED, block_fn.api_name or block_fn.name, e) from None


class PlainErrors:
    """ASGI middleware: an exception escaping a route (an unknown api_name or fn_index, a body Gradio cannot
    read) answers one sentence (400) and logs one line, instead of a bare "Internal Server Error" and a
    traceback."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as e:  # noqa: BLE001 (every client gets a sentence; the log one line)
            log.info("refused: %s %s: %s: %r", scope.get("method"), scope["path"][:200], type(e).__name__, str(e)[:200])
            if started:  # a stream already under way: it ends here
                return
            body = json.dumps({"detail": BAD_REQUEST}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})


class FileServing:
    """ASGI middleware on Gradio's file route: every file goes out with `X-Content-Type-Options: nosniff` (a
    browser never second-guesses its type), and an upload that did not decode as sound is not served at all."""

    def __init__(self, app, uploads: Uploads):
        self.app, self.uploads = app, uploads

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or FILE_ROUTE not in scope["path"]:
            return await self.app(scope, receive, send)
        path = scope["path"].split(FILE_ROUTE, 1)[1]  # ASGI gives the path percent-decoded
        try:
            allowed = self.uploads.may_serve(path)
        except (OSError, ValueError):  # a name too long, a NUL: Gradio refuses it
            allowed = True
        if not allowed:
            log.info("refused: %s", NOT_SERVED)
            body = NOT_SERVED.encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 404,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                        (b"x-content-type-options", b"nosniff"),
                    ],
                }
            )
            return await send({"type": "http.response.body", "body": body})

        async def nosniff_send(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"x-content-type-options", b"nosniff")]}
            await send(message)

        await self.app(scope, receive, nosniff_send)
