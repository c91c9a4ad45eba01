"""Gradio's upload route, guarded: every upload is stored under a random name, bounded in size and in time,
refused with one sentence when it is not a file, and reported to the app's upload registry (uploads.Uploads).

Gradio itself parses and stores the upload (<temp>/<hash of the content>/<name>); this ASGI middleware only
rewrites the multipart body as it streams past: each file part's name becomes a random one (its extension
kept), so a user's file name never reaches the disk and two uploads never share a file. The page still shows
the original name (the browser keeps it). A refused upload (too large, too slow, cut off, not a file) ends
in a body Gradio's own parser rejects, and that parser then deletes every temporary file of the upload.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
from pathlib import Path

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from .uploads import Uploads

UPLOAD_ROUTES = ("/gradio_api/upload", "/upload")  # Gradio's file upload endpoint
MULTIPART_SLACK = 64 * 1024  # bytes of multipart headers allowed on top of the file size cap
FILE_FIELD = b"files"  # the form field Gradio reads the files from
SUFFIX = re.compile(r"\.[a-z0-9]{1,5}")  # an extension kept on the random name (decoders and players use it)
NOT_A_FILE = (
    'The upload holds no file: send each recording as a file part named "files" with a plain '
    "filename (multipart/form-data, RFC 7578)."
)
NOT_MULTIPART = "The upload could not be read: send it as multipart/form-data."

log = logging.getLogger("webapp.uploads")
# python-multipart logs a warning for each body it rejects; the app's poison (RandomNames.poison) is one, and its
# refusal has its own log line already: one line per refusal.
logging.getLogger("python_multipart.multipart").setLevel(logging.ERROR)


def decodes_as_audio(path) -> bool:
    """True when the file's first samples decode as sound (libsndfile, else PyAV's FFmpeg): only such an
    upload is ever served back (web_guards.FileServing); a page or a picture renamed .wav is not."""
    import soundfile as sf

    try:
        with sf.SoundFile(path) as f:
            return f.frames > 0 and len(f.read(1024)) > 0
    except Exception:  # noqa: BLE001 (not a format libsndfile reads)
        pass
    import av

    try:
        with av.open(str(path), mode="r") as container:
            return bool(container.streams.audio) and next(container.decode(audio=0), None) is not None
    except Exception:  # noqa: BLE001 (not a container FFmpeg reads)
        return False


def random_name(filename: bytes) -> bytes:
    """A user's file name -> a random name with the same (lower-case, plain) extension."""
    suffix = Path(filename.decode("latin-1")).suffix.lower()
    return (secrets.token_hex(16) + (suffix if SUFFIX.fullmatch(suffix) else "")).encode()


def quoted(value: bytes) -> bytes:
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


class RandomNames:
    """A multipart/form-data body, re-written as it streams: every file part gets a random file name; a part
    of the `files` field that is not a file is dropped and `refused` set. Uses python-multipart's parser
    (Gradio's own), so the parts are exactly those Gradio would see."""

    def __init__(self, boundary: bytes):
        self.boundary, self.refused, self.in_part = boundary, False, False
        self._out = bytearray()
        self._headers: list[tuple[bytes, bytes]] = []
        self._field, self._value, self._skip = b"", b"", False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )

    def feed(self, chunk: bytes) -> bytes:
        """Bytes in -> the re-written bytes that are complete so far (raises MultipartParseError)."""
        self._parser.write(chunk)
        out = bytes(self._out)
        self._out.clear()
        return out

    def poison(self) -> bytes:
        """Bytes that make the multipart parser Gradio is feeding fail whatever state it is in, so that it
        deletes its temporary files (a part whose header line is not a header)."""
        return b"\r\n--" + self.boundary + b"\r\n\x00\r\n\r\n"

    def _part_begin(self):
        self._headers, self._skip = [], False

    def _header_field(self, data, start, end):
        self._field += data[start:end]

    def _header_value(self, data, start, end):
        self._value += data[start:end]

    def _header_end(self):
        self._headers.append((self._field, self._value))
        self._field, self._value = b"", b""

    def _headers_finished(self):
        out = [b"--" + self.boundary]
        for field, value in self._headers:
            if field.lower() == b"content-disposition":
                _, options = parse_options_header(value)
                name = options.get(b"name", b"")
                if b"filename" in options:
                    value = (
                        b"form-data; name=" + quoted(name) + b"; filename=" + quoted(random_name(options[b"filename"]))
                    )
                elif name == FILE_FIELD:  # a plain field, or RFC 5987's filename*= (which RFC 7578 forbids)
                    self.refused = self._skip = True
                    return
            out.append(field + b": " + value)
        self._out += b"\r\n".join(out) + b"\r\n\r\n"
        self.in_part = True

    def _part_data(self, data, start, end):
        if not self._skip:
            self._out += data[start:end]

    def _part_end(self):
        if not self._skip:
            self._out += b"\r\n"
        self.in_part = False

    def _end(self):
        self._out += b"--" + self.boundary + b"--\r\n"


class UploadRoute:
    """ASGI middleware on Gradio's upload route: random file names (RandomNames), at most `max_bytes` in one
    request (Gradio's own cap is per file), at most `upload_s` seconds per request (a client trickling bytes
    holds nothing up for longer), a readable sentence for every refusal, and the registry told which files
    each upload stored."""

    def __init__(self, app, uploads: Uploads, max_bytes: int, upload_s: float):
        self.app, self.uploads, self.max_bytes, self.upload_s = app, uploads, max_bytes, float(upload_s)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or not scope["path"].endswith(UPLOAD_ROUTES):
            return await self.app(scope, receive, send)
        limit = self.max_bytes + MULTIPART_SLACK
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return await self._refuse(send, 413, self._too_large())
        content_type, params = parse_options_header(headers.get(b"content-type", b""))
        if content_type != b"multipart/form-data" or not params.get(b"boundary"):
            return await self._refuse(send, 400, NOT_MULTIPART)
        names = RandomNames(params[b"boundary"])
        scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k != b"content-length"]}
        deadline = time.monotonic() + self.upload_s
        received, refusal, done = 0, None, False

        async def guarded_receive():
            """The client's body, renamed; on a refusal or a disconnect, the poison that ends Gradio's parse."""
            nonlocal received, refusal, done
            if done:  # the whole body was passed on: what follows is the client's own disconnect, if any
                return await receive() if refusal is None else {"type": "http.disconnect"}
            try:
                message = await asyncio.wait_for(receive(), timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                refusal = (
                    408,
                    f"The upload took longer than {self.upload_s:g} s and was stopped: send it again "
                    "over a faster connection.",
                )
                message = {"type": "http.disconnect"}
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refusal = (413, self._too_large())
                else:
                    try:
                        body = names.feed(message.get("body", b""))
                        done = not message.get("more_body", False)
                        return {**message, "body": body}
                    except MultipartParseError:
                        refusal = (400, NOT_MULTIPART)
            done = True  # a refusal, or the client went away half-way: Gradio's parser must fail and clean up
            return {"type": "http.request", "body": names.poison(), "more_body": False}

        response: list[dict] = []

        async def buffered_send(message):  # the answer is decided once Gradio has finished
            response.append(message)

        token = self.uploads.upload_started()
        stored: list[str] = []
        audio: list[str] = []
        try:
            try:
                await self.app(scope, guarded_receive, buffered_send)
            except Exception as e:  # noqa: BLE001 (a disconnect surfacing from the route)
                refusal = refusal or (400, f"The upload was cut off ({type(e).__name__}).")
            status = next((m["status"] for m in response if m["type"] == "http.response.start"), 0)
            if status == 200:
                body = b"".join(m.get("body", b"") for m in response if m["type"] == "http.response.body")
                try:
                    stored = [p for p in json.loads(body) if isinstance(p, str)]
                except ValueError:
                    stored = []
            if refusal is None and names.refused:
                refusal = (400, NOT_A_FILE)
            if refusal is not None:
                for p in stored:  # what Gradio stored of a refused upload goes at once
                    Path(p).unlink(missing_ok=True)
                stored = []
                return await self._refuse(send, *refusal)
            audio = [p for p in stored if await asyncio.to_thread(decodes_as_audio, p)]
            for message in response:
                await send(message)
        finally:
            self.uploads.upload_finished(token, stored, audio)

    def _too_large(self) -> str:
        return f"The upload is too large: at most {self.max_bytes // 2**20} MB in one request."

    @staticmethod
    async def _refuse(send, status: int, sentence: str):
        log.info("refused an upload: %s", sentence)
        message = sentence.encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(message)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": message})
