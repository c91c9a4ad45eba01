"""The app as users and scripts reach it: the classify API through gradio_client against the app started
on loopback, on real clips; readable errors; and no file of a recording left behind."""

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.app_server import AppServer, memory_mb
from emotion_core.labels import LABELS
from webapp.service import NOT_SURE

from .shared_paths import DATA_DIR, FAMILIES, HAVE_WHISPER, MANIFEST, WHISPER_DIR, needs_corpus, real_speech
from .test_load_audio import speechlike

pytestmark = pytest.mark.slow  # starts the app server

AUDIO_SUFFIXES = {".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".webm", ".aif", ".aiff", ".png", ".txt"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The real app on loopback, with Gradio's temporary files in a directory of the test's own."""
    env = {"EMOTION_WHISPER": str(WHISPER_DIR), "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("home-cache"))}
    if MANIFEST.is_file():
        env["EMOTION_DATA_DIR"] = str(DATA_DIR)
    srv = AppServer(tmp_path_factory.mktemp("gradio-tmp"), env)
    with srv:
        yield srv


@pytest.fixture(scope="module")
def app(server):
    from gradio_client import Client

    return Client(server.url, verbose=False), server.temp_dir


def write(path, audio, rate=48000, channels=2):
    sf.write(path, np.stack([audio] * channels, axis=1) if channels > 1 else audio, rate)
    return path


def classify(client, path):
    from gradio_client import handle_file

    return client.predict(handle_file(str(path)), api_name="/classify")


def check_answer(answer, seconds):
    assert set(answer) == {"duration_s", "device", "lead", "models", "not_sure", "pending", "timeline", "timing_ms"}
    assert answer["not_sure"] is None or answer["not_sure"].startswith("the ")  # why the answer is not sure
    assert answer["pending"] == []  # /classify: one complete answer
    assert abs(answer["duration_s"] - seconds) < 0.15 and answer["device"] in ("cpu", "cuda")
    assert FAMILIES <= set(answer["models"])  # without the Whisper encoder the other three answer
    for m in answer["models"].values():
        assert list(m["probabilities"]) == list(LABELS)
        assert abs(sum(m["probabilities"].values()) - 1) < 1e-3
        assert m["label"] == max(m["probabilities"], key=m["probabilities"].get)
        assert m["latency_ms"] >= 0
        assert m["not_sure"] == (max(m["probabilities"].values()) < NOT_SURE)  # the rule chosen on validation


def test_classify_a_corpus_clip_and_a_browser_style_recording(app, tmp_path):
    client, _ = app
    clips = sorted(DATA_DIR.glob("CREMA-D/AudioWAV/1015_*_ANG_*"))[:1]
    for clip in clips:
        check_answer(classify(client, clip), sf.info(str(clip)).duration)
    # what a browser microphone gives: 48 kHz stereo
    check_answer(classify(client, write(tmp_path / "mic.wav", speechlike(48000, 5.0))), 5.0)


def test_the_first_stage_alone_and_the_pages_two_stages_through_the_api(server, tmp_path):
    """Issue 25: /classify_first answers with the quick families ("pending" names the rest); the page's
    /analyse then /analyse_more (one client: one session) give both stages of one clip; /classify stays whole."""
    from gradio_client import Client, handle_file

    before = audio_files(server.temp_dir)
    client = Client(server.url, verbose=False)  # a page of its own (its heartbeat): closed below, its clip goes
    path = write(tmp_path / "three.wav", speechlike(48000, 3.0))
    first = client.predict(handle_file(str(path)), api_name="/classify_first")
    whole = classify(client, path)
    slow = ["whisper"] if "whisper" in whole["models"] else []
    assert first["pending"] == slow and whole["pending"] == []
    # the second stage adds Whisper, and the ensemble when it mixes Whisper in (which only the full answer holds)
    assert (set(first["models"]) | set(slow)) - {"ensemble"} == set(whole["models"]) - {"ensemble"}
    for name, out in first["models"].items():
        assert out["probabilities"] == whole["models"][name]["probabilities"]
    shown = client.predict(handle_file(str(path)), api_name="/analyse")
    assert shown[4]["pending"] == slow and shown[4]["duration_s"] == 3.0
    more = client.predict(api_name="/analyse_more")
    if slow:
        assert more[3]["pending"] == [] and more[3]["duration_s"] == 3.0 and more[3]["lead"] == whole["lead"]
        assert {n: m["probabilities"] for n, m in more[3]["models"].items()} == {
            n: m["probabilities"] for n, m in whole["models"].items()
        }
    client.close()  # the page closes: its clip goes once the server sees the heartbeat stream end (the client
    deadline = time.time() + 60  # notices its own close at the next heartbeat, every 15 s)
    while audio_files(server.temp_dir) - before and time.time() < deadline:
        time.sleep(0.5)
    assert not audio_files(server.temp_dir) - before, "the page closed and its clip stayed on disk"


@needs_corpus
def test_long_clip_gets_a_timeline_over_its_speech(app, tmp_path):
    client, _ = app
    clip, (pause_start, pause_end) = real_speech(seconds_of_pause=6.0)  # two utterances, a 6 s pause, a third
    seconds = len(clip) / 16000
    answer = classify(client, write(tmp_path / "long.wav", clip, 16000, 1))
    check_answer(answer, seconds)
    starts = [w["start_s"] for w in answer["timeline"]]
    assert len(starts) >= 3 and starts == sorted(starts)
    for w in answer["timeline"]:
        assert 0 <= w["start_s"] < w["end_s"] <= seconds + 1e-6
        assert w["label"] in LABELS and abs(sum(w["probabilities"].values()) - 1) < 1e-3
    # windows slide over speech: none lies inside the pause alone
    assert not any(pause_start + 0.3 < w["start_s"] and w["end_s"] < pause_end - 0.3 for w in answer["timeline"])


def test_bad_files_get_readable_errors_and_the_server_keeps_serving(app, tmp_path):
    client, _ = app
    png = tmp_path / "picture.wav"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20)
    silent = write(tmp_path / "silent.wav", np.zeros(16000, np.float32), 16000, 1)
    short = write(tmp_path / "short.wav", speechlike(16000, 0.05), 16000, 1)
    for path, words in ((png, "contains no sound"), (silent, "silent"), (short, "too short")):
        with pytest.raises(Exception, match=words):
            classify(client, path)
    check_answer(classify(client, write(tmp_path / "ok.wav", speechlike(16000, 2.0), 16000, 1)), 2.0)


def audio_files(temp):
    return {p for p in temp.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES}


def test_no_file_of_a_recording_remains(app, tmp_path):
    client, temp = app
    before = audio_files(temp)  # the example clips Gradio serves (dataset audio, not recordings)
    classify(client, write(tmp_path / "private.wav", speechlike(48000, 2.0)))
    with pytest.raises(Exception, match="(?i)silent"):  # gradio_client's error carries the readable message
        classify(client, write(tmp_path / "private-silent.wav", np.zeros(48000, np.float32)))
    time.sleep(0.5)
    left = audio_files(temp) - before
    assert not left, f"recordings left on disk: {left}"
    assert not [p for p in temp.rglob("private*")], "an uploaded file survived its request"


def api_cases(tmp_path):
    """30 files a visitor might send: each must give a result or the readable error of load_audio."""
    from .test_load_audio import BAD, FORMATS, encode_sf, multichannel, tone

    cases = {}
    for name, (source, words) in BAD.items():
        if isinstance(source, (bytes, bytearray)):
            cases[f"bad {name}"] = (bytes(source), words)
    speech = speechlike(48000, 2.0)
    rng = np.random.default_rng(3)
    good = {
        "8 kHz": encode_sf(speechlike(8000, 2.0), 8000, "WAV", "PCM_16"),
        "192 kHz": encode_sf(speechlike(192000, 1.0), 192000, "WAV", "PCM_16"),
        "6 channels": encode_sf(multichannel(speech, 6), 48000, "WAV", "PCM_16"),
        "8-bit": encode_sf(speech, 48000, "WAV", "PCM_U8"),
        "32-bit float": encode_sf(speech, 48000, "WAV", "FLOAT"),
        "mp3": FORMATS["mp3"][0](speech[:, None], 48000),
        "m4a": FORMATS["m4a-aac"][0](speech[:, None], 48000),
        "webm": FORMATS["webm-opus"][0](multichannel(speech, 2), 48000),
        "flac 96k": FORMATS["flac"][0](multichannel(speechlike(96000, 1.5), 2), 96000),
    }
    cases.update({k: (v, None) for k, v in good.items()})
    cases["noise only"] = (
        encode_sf((0.1 * rng.standard_normal(32000)).astype(np.float32), 16000, "WAV", "PCM_16"),
        "could not find speech",
    )
    cases["tone only"] = (encode_sf(tone(16000, seconds=2.0), 16000, "WAV", "PCM_16"), "could not find speech")
    good.update(
        {
            "24-bit wav": encode_sf(speech, 48000, "WAV", "PCM_24"),
            "aiff": FORMATS["aiff"][0](multichannel(speech, 2), 48000),
            "ogg vorbis 22 kHz": FORMATS["ogg-vorbis"][0](speechlike(22050, 2.0)[:, None], 22050),
            "ogg opus": FORMATS["ogg-opus"][0](multichannel(speech, 2), 48000),
            "mp3 44.1 kHz stereo": FORMATS["mp3"][0](multichannel(speechlike(44100, 2.0), 2), 44100),
        }
    )
    wav = encode_sf(speech, 48000, "WAV", "PCM_16")
    cases["silent stereo wav"] = (encode_sf(np.zeros((48000, 2), np.float32), 48000, "WAV", "PCM_16"), "silent")
    cases["silent mp3"] = (FORMATS["mp3"][0](np.zeros((48000, 1), np.float32), 48000), "silent")
    cases["0.3 s wav"] = (encode_sf(speechlike(16000, 0.3), 16000, "WAV", "PCM_16"), "too short")
    cases["0.3 s m4a"] = (FORMATS["m4a-aac"][0](speechlike(48000, 0.3)[:, None], 48000), "too short")
    cases["inf float wav"] = (
        encode_sf(np.concatenate([speechlike(16000, 1.0), [np.inf]]).astype(np.float32), 16000, "WAV", "FLOAT"),
        "NaN",
    )
    cases["truncated mp3"] = (good["mp3"][:100], "could not be read|too short|empty")
    cases["flac header + garbage"] = (
        FORMATS["flac"][0](speech[:, None], 48000)[:200] + rng.bytes(3000),
        "could not be read|too short|empty",
    )
    cases["wav cut in half"] = (wav[: len(wav) // 2], None)  # a recording cut short still has 1 s of audio
    cases["NaN float wav"] = (encode_sf(np.full(16000, np.nan, np.float32), 16000, "WAV", "FLOAT"), "NaN")
    cases["15 minutes"] = (encode_sf(np.tile(speechlike(8000, 1.0), 900), 8000, "WAV", "PCM_16"), "limit is")
    files = {}
    for i, (name, (data, words)) in enumerate(cases.items()):
        p = tmp_path / f"case{i}.wav"
        p.write_bytes(data)
        files[name] = (p, words)
    return files


def test_thirty_odd_inputs_through_the_api(app, server, tmp_path):
    client, _ = app
    cases = api_cases(tmp_path)
    assert len(cases) >= 30
    ok = tmp_path / "ok.wav"
    write(ok, speechlike(16000, 2.0), 16000, 1)
    classify(client, ok)
    before = memory_mb(server.proc.pid)
    for name, (path, words) in cases.items():
        if words is None:
            answer = classify(client, path)
            assert FAMILIES <= set(answer["models"]), name
        else:
            with pytest.raises(Exception, match=words):
                classify(client, path)
    check_answer(classify(client, ok), 2.0)  # still serving
    assert memory_mb(server.proc.pid) < before + 300, "memory did not come back after the bad inputs"


def test_upload_over_the_size_cap_is_refused(app, server, tmp_path):
    client, _ = app
    big = tmp_path / "big.wav"
    big.write_bytes(b"RIFF" + bytes(26 * 2**20))  # 26 MB, over the 25 MB cap
    with pytest.raises(Exception, match="exceeds the maximum file size"):  # gradio_client checks first
        classify(client, big)
    import httpx  # a script that posts the file itself meets the server's own cap

    with open(big, "rb") as f:
        r = httpx.post(server.url + "gradio_api/upload", files={"files": ("big.wav", f, "audio/wav")}, timeout=60)
    assert r.status_code == 413 and "25 MB" in r.text  # the app's cap on the whole request answers first
    check_answer(classify(client, write(tmp_path / "after.wav", speechlike(16000, 2.0), 16000, 1)), 2.0)


def test_the_server_warms_up_in_the_background_once_ready(server):
    """Issue 25: every path of an analysis runs once after start-up, so the first pupil does not pay for it; on a
    fresh install (an empty cache directory) that includes exporting the Whisper encoder and the 2D family to ONNX
    Runtime."""
    assert "warm-up done" in server.wait_for_warm_up(180)
    log = server.log.read_bytes()
    assert b"warm-up failed" not in log and b"stays in torch" not in log
    exported = Path(server.extra_env["XDG_CACHE_HOME"]) / "emotion-recognition"
    assert b"cnn2d in ONNX Runtime)" in log and list(exported.glob("efficientat-mn04-audioset-*.onnx"))
    if HAVE_WHISPER:
        assert b"warm-up done (Whisper encoder, cnn2d in ONNX Runtime)" in log
        assert list(exported.glob("whisper-encoder-*.onnx"))


def test_after_every_request_no_audio_remains_and_the_log_holds_none(app, server):
    """Runs last in this module, after every good, bad and oversized request above."""
    from webapp.examples import example_clips

    _, temp = app
    examples = {e.path.rsplit("/", 1)[-1] for e in example_clips(DATA_DIR if MANIFEST.is_file() else None)}
    time.sleep(0.5)
    left = [p for p in audio_files(temp) if p.name not in examples]
    assert not left, f"uploaded or recorded audio left on disk: {left}"
    log = server.log.read_bytes()
    assert log, "the server wrote no log at all: the check below would prove nothing"
    for marker in (b"RIFF", b"UklGR", b"data:audio", b"OggS", b"fLaC", b"ID3", b"\x89PNG"):
        assert marker not in log, f"the server log holds audio ({marker!r})"
    assert len(log) < 200_000, f"the server log is {len(log)} bytes: something is dumping data into it"
