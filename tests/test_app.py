"""The app as users and scripts reach it: the classify API through gradio_client against the app started
on loopback, on real clips; readable errors; and no file of a recording left behind."""
import json
import time

import numpy as np
import pytest
import soundfile as sf

from emotion_core.labels import LABELS

from .app_server import AppServer
from .shared_paths import DATA_DIR, MANIFEST, WHISPER_DIR, needs_corpus, real_speech
from .test_load_audio import speechlike

AUDIO_SUFFIXES = {".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".webm", ".aif", ".aiff", ".png", ".txt"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    temp = tmp_path_factory.mktemp("gradio-tmp")
    env = {"EMOTION_WHISPER": str(WHISPER_DIR)}
    if MANIFEST.is_file():
        env["EMOTION_DATA_DIR"] = str(DATA_DIR)
    with AppServer(temp, env) as url:
        from gradio_client import Client

        yield Client(url, verbose=False), temp


def write(path, audio, rate=48000, channels=2):
    sf.write(path, np.stack([audio] * channels, axis=1) if channels > 1 else audio, rate)
    return path


def classify(client, path):
    from gradio_client import handle_file

    return client.predict(handle_file(str(path)), api_name="/classify")


def check_answer(answer, seconds):
    assert set(answer) == {"duration_s", "device", "models", "timeline"}
    assert abs(answer["duration_s"] - seconds) < 0.15 and answer["device"] in ("cpu", "cuda")
    assert {"cnn1d", "lstm", "cnn2d", "whisper", "ensemble"} <= set(answer["models"])
    for m in answer["models"].values():
        assert list(m["probabilities"]) == list(LABELS)
        assert abs(sum(m["probabilities"].values()) - 1) < 1e-3
        assert m["label"] == max(m["probabilities"], key=m["probabilities"].get)
        assert m["latency_ms"] >= 0


def test_classify_a_corpus_clip_and_a_browser_style_recording(app, tmp_path):
    client, _ = app
    clips = sorted(DATA_DIR.glob("CREMA-D/AudioWAV/1015_*_ANG_*"))[:1]
    for clip in clips:
        check_answer(classify(client, clip), sf.info(str(clip)).duration)
    # what a browser microphone gives: 48 kHz stereo
    check_answer(classify(client, write(tmp_path / "mic.wav", speechlike(48000, 5.0))), 5.0)


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
    with pytest.raises(Exception):
        classify(client, write(tmp_path / "private-silent.wav", np.zeros(48000, np.float32)))
    time.sleep(0.5)
    left = audio_files(temp) - before
    assert not left, f"recordings left on disk: {left}"
    assert not [p for p in temp.rglob("private*")], "an uploaded file survived its request"
