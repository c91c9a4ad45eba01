"""The app's file lifecycle and request handling, against the real app on loopback (issue 14 items 2, 3, 4
and 7; issue 18 item 1): identical uploads, no recording left on disk after any sequence of requests,
refusals, disconnects and a crash, only uploads ever deleted, the request size bounded, one log line per
refused input."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import soundfile as sf

from bench.app_server import AppServer

from .shared_paths import FAMILIES, WHISPER_DIR
from .test_load_audio import speechlike

pytestmark = pytest.mark.slow
SWEEP_S = 6.0  # EMOTION_SWEEP_S for these servers: an unused upload is gone within 1.25 of these
AUDIO = {".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".webm", ".aif", ".aiff"}


def user_audio(temp_dir, examples=frozenset()):
    """Every audio file in the app's directory that is not an example clip, plus Gradio's half-received
    uploads (tmpXXXX)."""
    return sorted(p for p in temp_dir.rglob("*") if p.is_file() and p.name not in examples
                  and (p.suffix.lower() in AUDIO or p.name.startswith("tmp")))


def clip(path, seconds=2.0, seed=0):
    audio = speechlike(16000, seconds) * (1 + 0.01 * seed)
    sf.write(path, audio, 16000)
    return path


def start(tmp_path_factory, **env):
    # a 1 s heartbeat: a closed client's session ends (and its unload runs) within a second, not 15 s
    env = {"EMOTION_WHISPER": str(WHISPER_DIR), "EMOTION_SWEEP_S": str(SWEEP_S), "GRADIO_HEARTBEAT_INTERVAL": 1, **env}
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


def test_a_url_on_a_private_host_is_refused_plainly_and_leaves_nothing(server, tmp_path):
    """Issue 14 item 7: a clip given as a URL (gradio_client's handle_file(url), or {"path": url}). Gradio
    fetches only public addresses (its SSRF guard): a loopback URL gets a plain refusal, one log line, and
    nothing of it stays on disk after a sweep interval."""
    import functools
    import http.server

    from gradio_client import handle_file

    from bench.app_server import free_port

    served = tmp_path / "served"
    served.mkdir()
    clip(served / "by-url.wav", seed=11)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    source = f"http://127.0.0.1:{httpd.server_address[1]}/by-url.wav"
    before = server.log.read_text()
    try:
        client = client_of(server)
        with pytest.raises(Exception, match="could not be fetched .*upload the file instead"):
            client.predict(handle_file(source), api_name="/classify")
        client.close()
        url = server.url + "gradio_api/call/classify"
        r = httpx.post(url, json={"data": [{"path": source, "meta": {"_type": "gradio.FileData"}}]})
        answer = httpx.get(f"{url}/{r.json()['event_id']}", timeout=60).text
        assert "event: error" in answer and "could not be fetched" in answer, answer
    finally:
        httpd.shutdown()
    new = server.log.read_text()[len(before):]
    assert "Traceback" not in new and len([x for x in new.splitlines() if "refused" in x]) == 2, new
    time.sleep(1.5 * SWEEP_S)
    empty = [p for p in (server.temp_dir / "gradio").iterdir() if p.is_dir() and not any(p.iterdir())]
    assert not user_audio(server.temp_dir, server.examples) and not empty, f"the refused URL left {empty}"


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
    new = server.log.read_text()[len(before):]
    assert "Traceback" not in new, new
    assert len([line for line in new.splitlines() if "refused" in line]) == 1, new


def test_analyse_twice_keeps_the_clip_and_closing_the_session_deletes_it(server, tmp_path):
    """Issue 18 item 1: the page's Analyse after a result, and the player, need the file; nothing
    outlives the session."""
    from gradio_client import handle_file

    client = client_of(server)
    upload = client.predict(handle_file(str(clip(tmp_path / "mine.wav", seed=7))), api_name="/analyse")
    assert upload[1] is not None
    stored = [p for p in user_audio(server.temp_dir, server.examples) if p.name == "mine.wav"]
    assert len(stored) == 1, "the session's clip is not kept while it is on the page"
    again = client.predict({"path": str(stored[0]), "meta": {"_type": "gradio.FileData"}}, api_name="/analyse")
    assert again[1] is not None, again[3]
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
        yield b"--x\r\nContent-Disposition: form-data; name=\"files\"; filename=\"cut.wav\"\r\n\r\n"
        yield b"RIFF" + bytes(200_000)
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        httpx.post(server.url + "gradio_api/upload", content=body(),
                   headers={"content-type": "multipart/form-data; boundary=x"}, timeout=10)
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
