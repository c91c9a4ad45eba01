"""The app's file lifecycle and request handling, against the real app on loopback (issue 14 items 2, 3, 4
and 7; issue 18 item 1): identical uploads, no recording left on disk after any sequence of requests,
refusals, disconnects and a crash, only uploads ever deleted, the request size bounded, one log line per
refused input."""

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import soundfile as sf

from bench.app_server import REPO, AppServer
from webapp.upload_route import NOT_A_FILE
from webapp.web_guards import BAD_REQUEST, FAILED, NOT_AN_UPLOAD, NOT_SERVED, WRONG_KIND

from .shared_paths import FAMILIES, WHISPER_DIR
from .test_load_audio import speechlike

pytestmark = pytest.mark.slow
SWEEP_S = 6.0  # EMOTION_SWEEP_S for these servers: an unused upload is gone within 1.25 of these
UPLOAD_S = 20.0  # EMOTION_UPLOAD_S: an upload still arriving after this long is cut off
AUDIO = {".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".webm", ".aif", ".aiff"}


GAME_CLIP = "audio.wav"  # Gradio's name for sound the app sends itself (the game's example clips); no upload has it


def user_audio(temp_dir, examples=frozenset()):
    """Every audio file in the app's directory that is not an example clip, plus Gradio's half-received
    uploads (tmpXXXX)."""
    return sorted(
        p
        for p in temp_dir.rglob("*")
        if p.is_file()
        and p.name not in examples | {GAME_CLIP}
        and (p.suffix.lower() in AUDIO or p.name.startswith("tmp"))
    )


def clip(path, seconds=2.0, seed=0):
    audio = speechlike(16000, seconds) * (1 + 0.01 * seed)
    sf.write(path, audio, 16000)
    return path


def start(tmp_path_factory, **env):
    # a 1 s heartbeat: a closed client's session ends (and its unload runs) within a second, not 15 s
    env = {
        "EMOTION_WHISPER": str(WHISPER_DIR),
        "EMOTION_SWEEP_S": SWEEP_S,
        "EMOTION_UPLOAD_S": UPLOAD_S,
        "GRADIO_HEARTBEAT_INTERVAL": 1,
        **env,
    }
    return AppServer(tmp_path_factory.mktemp("app-tmp"), {k: str(v) for k, v in env.items()})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start(tmp_path_factory)
    with srv:
        srv.examples = {p.name for p in user_audio(srv.temp_dir)}  # cached example clips, if any
        yield srv


def client_of(server):
    from gradio_client import Client

    return Client(server.url, verbose=False)


def call(server, api_name, path):
    """One visitor: a page (or script) session that sends one clip and leaves."""
    from gradio_client import handle_file

    client = client_of(server)
    try:
        return client.predict(handle_file(str(path)), api_name=api_name)
    finally:
        client.close()


def upload_raw(server, path, name=None):
    """A script's upload through the upload route, without a page: the stored path."""
    with open(path, "rb") as f:
        r = httpx.post(server.url + "gradio_api/upload", files={"files": (name or path.name, f, "audio/wav")})
    assert r.status_code == 200, r.text
    return r.json()[0]


def call_raw(server, api_name, stored):
    """/gradio_api/call/<api_name> with an uploaded path, the answer stream read to its end: no heartbeat,
    no page."""
    url = f"{server.url}gradio_api/call/{api_name}"
    r = httpx.post(url, json={"data": [{"path": stored, "meta": {"_type": "gradio.FileData"}}]})
    assert r.status_code == 200, r.text
    return httpx.get(f"{url}/{r.json()['event_id']}", timeout=120).text


def idle_then_check(server, examples=frozenset()):
    time.sleep(1.5 * SWEEP_S)
    left = user_audio(server.temp_dir, examples)
    assert not left, f"user audio left on disk after an idle sweep interval: {left}"


def test_ten_identical_uploads_at_once_all_answer_on_both_endpoints(server, tmp_path):
    """Issue 14 item 2: a class uploading the clip the teacher handed out."""
    path = clip(tmp_path / "handout.wav")
    for api_name in ("/classify", "/analyse"):
        with ThreadPoolExecutor(10) as pool:
            answers = list(pool.map(lambda _, api=api_name: call(server, api, path), range(10)))
        if api_name == "/classify":
            assert all(FAMILIES <= set(a["models"]) for a in answers)
        else:
            errors = [a[3] for a in answers if a[1] is None]  # no probability bars: the summary says why
            assert not errors, errors
    deadline = time.time() + SWEEP_S / 2  # sessions end (unload runs) after the answers; the sweep is later
    while user_audio(server.temp_dir, server.examples) and time.time() < deadline:
        time.sleep(0.2)
    assert not user_audio(server.temp_dir, server.examples), "classify/analyse left the upload behind"


def test_a_file_that_was_not_uploaded_is_never_deleted(server):
    """Issue 14 item 4: a file placed in the temp dir (as an example's cached copy is) and named in a
    request is read, never deleted."""
    placed = server.temp_dir / "gradio" / "placed-by-hand" / "teacher.wav"
    placed.parent.mkdir()
    clip(placed)
    url = server.url + "gradio_api/call/classify"
    r = httpx.post(url, json={"data": [{"path": str(placed), "meta": {"_type": "gradio.FileData"}}]})
    httpx.get(f"{url}/{r.json()['event_id']}", timeout=120)
    time.sleep(1.5 * SWEEP_S)
    assert placed.exists(), "classify or the sweep deleted a file nobody uploaded"
    placed.unlink()


def test_a_refused_server_path_gets_a_message(server):
    """Issue 14 item 7: {"error": null} before."""
    url = server.url + "gradio_api/call/classify"
    r = httpx.post(url, json={"data": [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}]})
    answer = httpx.get(f"{url}/{r.json()['event_id']}", timeout=60).text
    assert "event: error" in answer and "not uploaded" in answer and '{"error": null}' not in answer


def test_audio_given_as_anything_but_an_upload_is_refused_before_anything_happens(server, tmp_path):
    """Issue 28 item 4: Gradio fetched audio given as a URL (its guard lets 100.64.0.0/10 through), and
    file://, ftp://, data: and leading-space paths got "Cannot move /<working dir>/file:/...". Now each gets
    the same sentence, one log line, and the app connects nowhere."""
    import functools
    import http.server

    from gradio_client import handle_file

    from bench.app_server import free_port

    served = tmp_path / "served"
    served.mkdir()
    clip(served / "by-url.wav", seed=11)
    hits = []

    class Counting(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", free_port()), functools.partial(Counting, directory=str(served))
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    local = f"http://127.0.0.1:{httpd.server_address[1]}/by-url.wav"
    sources = [
        local,
        "http://100.64.0.1/by-url.wav",
        "file:///etc/passwd",
        "ftp://example.org/a.wav",
        "data:audio/wav;base64,UklGRg==",
        " /etc/passwd",
    ]
    before = server.log.read_text()
    try:
        client = client_of(server)
        with pytest.raises(Exception, match="Send the audio as a file uploaded to this app"):
            client.predict(handle_file(local), api_name="/classify")
        client.close()
        for source in sources:
            url = server.url + "gradio_api/call/classify"
            r = httpx.post(url, json={"data": [{"path": source, "meta": {"_type": "gradio.FileData"}}]})
            answer = httpx.get(f"{url}/{r.json()['event_id']}", timeout=60).text
            assert "event: error" in answer and json.dumps(NOT_AN_UPLOAD) in answer, (source, answer)
            assert str(REPO) not in answer and "Cannot move" not in answer, answer
    finally:
        httpd.shutdown()
    assert not hits, f"the app fetched {hits}"
    new = server.log.read_text()[len(before) :]
    assert "Traceback" not in new and len([x for x in new.splitlines() if "refused" in x]) == len(sources) + 1, new
    assert not user_audio(server.temp_dir, server.examples)


def test_one_request_of_three_20_mb_files_is_refused(server):
    """Issue 14 item 7: Gradio's cap is per file; the app bounds the request."""
    files = [("files", (f"part{i}.wav", b"RIFF" + bytes(20 * 2**20), "audio/wav")) for i in range(3)]
    r = httpx.post(server.url + "gradio_api/upload", files=files, timeout=120)
    assert r.status_code == 413 and "25 MB" in r.text
    time.sleep(0.5)
    assert not user_audio(server.temp_dir, server.examples)


def test_a_bad_input_logs_one_line_and_no_traceback(server, tmp_path):
    bad = tmp_path / "picture.wav"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20)
    before = server.log.read_text()
    with pytest.raises(Exception, match="could not be read|contains no sound"):
        call(server, "/classify", bad)
    time.sleep(0.5)
    new = server.log.read_text()[len(before) :]
    assert "Traceback" not in new, new
    assert len([line for line in new.splitlines() if "refused" in line]) == 1, new


def test_analyse_twice_keeps_the_clip_and_closing_the_session_deletes_it(server, tmp_path):
    """Issue 18 item 1: the page's Analyse after a result, and the player, need the file; nothing
    outlives the session."""
    from gradio_client import handle_file

    client = client_of(server)
    upload = client.predict(handle_file(str(clip(tmp_path / "mine.wav", seed=7))), api_name="/analyse")
    assert upload[1] is not None
    stored = user_audio(server.temp_dir, server.examples)
    assert len(stored) == 1, "the session's clip is not kept while it is on the page"
    # gradio_client sends the file again (it can read the path here), so the page's clip is a new upload now
    again = client.predict({"path": str(stored[0]), "meta": {"_type": "gradio.FileData"}}, api_name="/analyse")
    assert again[1] is not None, again[3]
    stored = user_audio(server.temp_dir, server.examples)
    assert len(stored) == 1, f"the page keeps its current clip only: {stored}"
    time.sleep(1.5 * SWEEP_S)
    assert stored[0].exists(), "the sweep deleted a clip its session still shows"
    page = httpx.get(f"{server.url}gradio_api/file={stored[0]}")
    assert page.status_code == 200, "the player cannot fetch (replay, download) the clip"
    client.close()  # the page is closed: Gradio runs the unload event
    deadline = time.time() + SWEEP_S / 2  # before any sweep could: the session's end deleted it
    while stored[0].exists() and time.time() < deadline:
        time.sleep(0.5)
    assert not stored[0].exists(), "the clip outlived its session"


def test_uploads_without_a_request_and_cut_off_uploads_are_swept(server, tmp_path):
    """Issue 14 item 3: a client that uploads and disconnects, and one that stops half-way."""
    path = clip(tmp_path / "abandoned.wav", seed=3)
    with open(path, "rb") as f:
        r = httpx.post(server.url + "gradio_api/upload", files={"files": ("abandoned.wav", f, "audio/wav")})
    assert r.status_code == 200
    assert user_audio(server.temp_dir, server.examples)

    def body():  # a body that stops half-way: the connection drops
        yield b'--x\r\nContent-Disposition: form-data; name="files"; filename="cut.wav"\r\n\r\n'
        yield b"RIFF" + bytes(200_000)
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        httpx.post(
            server.url + "gradio_api/upload",
            content=body(),
            headers={"content-type": "multipart/form-data; boundary=x"},
            timeout=10,
        )
    idle_then_check(server, server.examples)


def test_refused_by_a_full_queue_then_kill_9_then_restart_leaves_no_audio(tmp_path_factory, tmp_path):
    """Issue 14 item 3: uploads refused with 503 "Queue is full", requests cut off by kill -9, and the
    restart that must remove what the crash left."""
    srv = start(tmp_path_factory, EMOTION_QUEUE_SIZE=1, EMOTION_CONCURRENCY=1)
    paths = [clip(tmp_path / f"pupil{i}.wav", seconds=8.0, seed=i) for i in range(12)]
    with srv:
        examples = {p.name for p in user_audio(srv.temp_dir)}
        errors = []

        def send(p):
            try:
                call(srv, "/classify", p)
            except Exception as e:  # noqa: BLE001 (refusals are the point)
                errors.append(str(e))

        with ThreadPoolExecutor(12) as pool:
            list(pool.map(send, paths))
        assert any("full" in e.lower() for e in errors), f"no request was refused by the full queue: {errors}"
        idle_then_check(srv, examples)

        threads = [threading.Thread(target=send, args=(p,), daemon=True) for p in paths[:4]]
        for t in threads:
            t.start()
        deadline = time.time() + 60
        while not user_audio(srv.temp_dir, examples) and time.time() < deadline:
            time.sleep(0.05)
        assert user_audio(srv.temp_dir, examples), "no upload reached the server before the crash"
        srv.kill()
        left = user_audio(srv.temp_dir, examples)
        assert left  # the crash left recordings: the restart must remove them
        with srv:  # restart on the same directory
            assert not user_audio(srv.temp_dir, examples), "the restart kept what the crash left"
    assert not user_audio(srv.temp_dir), "the exit left files behind"


def test_analyse_without_a_page_deletes_the_clip_with_its_answer(server, tmp_path):
    """Issue 28 item 1: /analyse called by a script (no heartbeat, so no page can show the clip) kept the clip."""
    stored = upload_raw(server, clip(tmp_path / "jane_doe_interview.wav", seed=21))
    answer = call_raw(server, "analyse", stored)
    assert "event: complete" in answer, answer[-500:]
    left = user_audio(server.temp_dir, server.examples)  # the server still runs; no sweep has passed
    assert not left, f"/analyse kept the clip after its answer: {left}"


def test_uploads_are_stored_under_random_names(server, tmp_path):
    """Issue 28 item 3: the user's file name never reaches the disk, and two uploads never share a file."""
    path = clip(tmp_path / "jane_doe_interview.wav", seed=22)
    first, second = upload_raw(server, path), upload_raw(server, path)
    assert first != second, "two uploads share one file"
    for stored in (first, second):
        assert "jane" not in stored and stored.endswith(".wav"), stored
        assert len(Path(stored).stem) >= 32, f"{stored} is not a random name"
    assert not [p for p in server.temp_dir.rglob("*jane*")], "the user's file name is on disk"
    answer = call_raw(server, "classify", first)
    assert "event: complete" in answer, answer[-500:]
    assert not Path(first).exists() and Path(second).exists()  # each upload is its own file
    idle_then_check(server, server.examples)


def trickle(server, stop: threading.Event, every_s: float = 0.5):
    """A raw POST to the upload route whose file arrives one byte at a time; returns what the server answered."""
    head = (
        b'--x\r\nContent-Disposition: form-data; name="files"; filename="slow.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\nRIFF"
    )
    request = (
        f"POST /gradio_api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: {len(head) + 10_000}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=every_s) as sock:
        sock.sendall(request.encode() + head)
        answer = b""
        while not stop.is_set():
            try:
                sock.sendall(b"\0")
                answer += sock.recv(65536)
                if answer:  # the server answered: read the rest of its answer
                    return read_answer(sock, answer)
            except TimeoutError:
                continue
            except OSError:
                break
        return answer.decode(errors="replace")


def read_answer(sock, start: bytes) -> str:
    """The rest of an HTTP answer whose first bytes are `start` (its length from its content-length)."""
    sock.settimeout(10)
    answer = start
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536)
    head, body = answer.split(b"\r\n\r\n", 1)
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    while len(body) < length:
        body += sock.recv(65536)
    return (head + b"\r\n\r\n" + body).decode(errors="replace")


def test_a_trickling_upload_holds_up_nothing_and_is_cut_off(server, tmp_path):
    """Issue 28 item 2: one upload kept in flight (a byte now and then) stopped every deletion and the sweep,
    for every user. Now the other clips go as usual, and the slow upload is refused after EMOTION_UPLOAD_S
    with one sentence, its bytes deleted."""
    stop = threading.Event()
    before = server.log.read_text()
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(trickle, server, stop)
        deadline = time.time() + 30
        while not list((server.temp_dir / "gradio").glob("tmp*")) and time.time() < deadline:
            time.sleep(0.2)
        try:
            assert list((server.temp_dir / "gradio").glob("tmp*")), "the slow upload never started"
            answer = call(server, "/classify", clip(tmp_path / "during.wav", seed=23))
            assert FAMILIES <= set(answer["models"])
            left = [p for p in user_audio(server.temp_dir, server.examples) if not p.name.startswith("tmp")]
            assert not left, f"a /classify clip stayed after its answer while an upload was in flight: {left}"
            unused = upload_raw(server, clip(tmp_path / "unused.wav", seed=24))
            time.sleep(1.5 * SWEEP_S)
            assert not slow.done(), "the slow upload ended before the sweep could be checked"
            assert not Path(unused).exists(), "the sweep stopped while an upload was in flight"
            refusal = slow.result(timeout=UPLOAD_S + 30)
        finally:
            stop.set()
    assert "408" in refusal.splitlines()[0] and "took longer" in refusal, refusal
    time.sleep(0.5)
    new = server.log.read_text()[len(before) :]
    assert "Traceback" not in new and len([x for x in new.splitlines() if "took longer" in x]) == 1, new
    assert "invalid character" not in new, new
    assert not user_audio(server.temp_dir, server.examples), "the refused slow upload left its bytes"


@pytest.mark.parametrize(
    "disposition",
    [
        "form-data; name=\"files\"; filename*=UTF-8''..%2F..%2Fname.wav",  # RFC 5987, which RFC 7578 forbids
        'form-data; name="files"',  # a plain field where a file belongs
    ],
)
def test_an_upload_that_is_not_a_file_is_refused_plainly_and_leaves_nothing(server, disposition):
    """Issue 28 item 5: a bare 500 (TypeError: File is not an instance of GradioUploadFile), and the bytes of
    the good part stayed until the sweep."""
    good = b'--x\r\nContent-Disposition: form-data; name="files"; filename="good.wav"\r\n\r\nRIFF' + bytes(5000)
    bad = f"\r\n--x\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + b"RIFF" + bytes(5000) + b"\r\n--x--\r\n"
    before = server.log.read_text()
    r = httpx.post(
        server.url + "gradio_api/upload",
        content=good + bad,
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert r.status_code == 400 and r.text == NOT_A_FILE, r.text
    assert not user_audio(server.temp_dir, server.examples), "the refused upload left its bytes"
    new = server.log.read_text()[len(before) :]
    assert "Traceback" not in new and len([x for x in new.splitlines() if "refused" in x]) == 1, new


def queue_call(server, fn_index, data, session="probe"):
    """One call through the page's own route (queue/join, then the session's stream): the answer's output."""
    r = httpx.post(
        server.url + "gradio_api/queue/join",
        json={"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None, "trigger_id": None},
    )
    if r.status_code != 200:
        return {"status": r.status_code, "error": r.json().get("detail")}
    with httpx.stream("GET", server.url + "gradio_api/queue/data", params={"session_hash": session}, timeout=60) as s:
        for line in s.iter_lines():
            if line.startswith("data:") and json.loads(line[5:]).get("msg") == "process_completed":
                return json.loads(line[5:])["output"]
    raise AssertionError("no answer")


def test_every_endpoint_answers_a_wrong_value_with_one_sentence_and_one_log_line(server):
    """Issue 28 item 6: the undocumented endpoints (example loader, explain, game, act it out, the confusion
    selector) answered wrong types with pydantic errors, "[Errno 36] File name too long", "embedded null byte",
    "cannot unpack non-iterable NoneType" or an object address; an unknown api_name or fn_index got a bare 500."""
    dependencies = httpx.get(server.url + "config").json()["dependencies"]
    wrong = [
        12345,
        "\0",
        "a" * 5000,
        {"path": None},
        {"path": "a" * 5000, "meta": {"_type": "gradio.FileData"}},
        [1, 2],
    ]
    before = server.log.read_text()
    refusals = 0
    for fn_index, dependency in enumerate(dependencies):
        for value in wrong:
            output = queue_call(server, fn_index, [value] * len(dependency["inputs"]))
            if "error" in output:
                refusals += 1
                assert output["error"] in (NOT_AN_UPLOAD, WRONG_KIND, FAILED), (dependency["api_name"], output)
    r = httpx.post(server.url + "gradio_api/call/no_such_endpoint", json={"data": []})
    assert r.status_code == 400 and r.json()["detail"] == BAD_REQUEST, r.text
    assert queue_call(server, 999, []) == {"status": 400, "error": BAD_REQUEST}
    time.sleep(0.5)
    new = server.log.read_text()[len(before) :]
    assert refusals and "Traceback" not in new, new[-3000:]
    assert len([x for x in new.splitlines() if "refused" in x]) == refusals + 2, new[-3000:]


def test_only_uploads_that_decode_as_sound_are_served_and_never_sniffed(server, tmp_path):
    """Issue 28 item 7: an HTML or SVG file renamed .wav was served back inline as audio/wav, without
    X-Content-Type-Options: nosniff."""
    page = tmp_path / "page.wav"
    page.write_text("<html><body><script>alert(document.cookie)</script></body></html>")
    picture = tmp_path / "picture.wav"
    picture.write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    for disguised in (page, picture):
        stored = upload_raw(server, disguised)
        r = httpx.get(f"{server.url}gradio_api/file={stored}")
        assert r.status_code == 404 and r.text == NOT_SERVED, (disguised.name, r.status_code, r.text[:200])
        assert "<script>" not in r.text
    stored = upload_raw(server, clip(tmp_path / "voice.wav", seed=25))
    r = httpx.get(f"{server.url}gradio_api/file={stored}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("audio/"), r.headers
    assert r.headers.get("x-content-type-options") == "nosniff"
    idle_then_check(server, server.examples)
