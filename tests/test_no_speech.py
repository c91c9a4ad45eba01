"""The "no speech" answer on every input path (service.classify, service.analyse, the CLI), the one-window
answer of a 3 s clip, prepare_speech measured once per request, and the CLI's refusals."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import emotion_core.audio as audio_mod
from bench.no_speech import non_speech
from emotion_core import load_audio, prepare_speech
from emotion_core.audio import speech_bounds
from emotion_core.recognizer import NoSpeechError, Recognizer
from emotion_core.vad import speech_activity, speech_regions
from webapp import service

from .shared_paths import CHECKPOINTS, DATA_DIR, FAMILIES, REPO, WHISPER_DIR, needs_corpus
from .test_load_audio import speechlike

NO_SPEECH = "I could not find speech in this clip"
SOUNDS = non_speech()  # name -> (rate, samples) of sounds that are not speech (bench/no_speech.py)
VOICE = "RAVDESS/Actor_03/03-01-05-02-01-01-03.opus"  # a corpus utterance (angry)


@pytest.fixture(scope="module")
def recognizer():
    return Recognizer(CHECKPOINTS, "cpu", str(WHISPER_DIR))


@pytest.mark.parametrize("name", list(SOUNDS))
def test_non_speech_is_answered_with_no_speech(recognizer, name):
    source = SOUNDS[name]
    with pytest.raises(NoSpeechError, match=NO_SPEECH):
        service.classify(source, recognizer)
    with pytest.raises(NoSpeechError, match=NO_SPEECH):
        service.analyse(source, recognizer)


def test_speech_is_still_answered(recognizer):
    pred = service.classify((16000, speechlike(16000, 2.0)), recognizer)
    assert set(pred.models) == set(recognizer.names) and pred.lead in pred.models  # every model answers


@needs_corpus
def test_inverted_stereo_speech_is_answered_like_the_voice(recognizer):
    voice = load_audio(DATA_DIR / VOICE)
    alone = service.classify((16000, voice), recognizer).to_json()
    inverted = service.classify((16000, np.stack([voice, -voice], axis=1)), recognizer).to_json()
    lead = alone["lead"]
    assert inverted["models"][lead] == {**alone["models"][lead], "latency_ms": inverted["models"][lead]["latency_ms"]}


@needs_corpus
def test_a_three_second_clip_gets_one_window(recognizer):
    voice = prepare_speech(load_audio(DATA_DIR / VOICE))
    (a, b), *_ = speech_regions(voice)
    middle = int((a + b) / 2 * 16000)
    # two pieces of speech and a pause, loud at both ends: prepare_speech keeps all 3.0 s (301 centred frames)
    clip = np.concatenate([voice[middle - 20000 : middle], np.zeros(8000, np.float32), voice[middle : middle + 20000]])
    assert len(prepare_speech(clip)) == 3 * 16000 and len(speech_regions(prepare_speech(clip))) == 2
    a = service.analyse((16000, clip), recognizer)
    assert len(a.prediction.clip.times_s) == 1 and a.api["timeline"] == [] and a.timeline is None


def test_speech_activity_is_measured_once_per_request(recognizer, monkeypatch):
    clip = np.concatenate([np.zeros(8000, np.float32), speechlike(16000, 5.0), np.zeros(4000, np.float32)])
    start, end = speech_bounds(clip)
    expected = prepare_speech(clip)
    calls = []
    measure = audio_mod._speech_activity
    monkeypatch.setattr(audio_mod, "_speech_activity", lambda a: calls.append(1) or measure(a))
    windows = recognizer.model_windows(clip, vad=speech_activity)
    assert len(calls) == 1
    np.testing.assert_array_equal(windows.speech, expected)
    assert windows.speech_s == (start / 16000, end / 16000) and windows.times_s[0][0] >= start / 16000


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "webapp.predict", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cli_without_models_says_so(tmp_path):
    voice = tmp_path / "voice.wav"
    sf.write(voice, speechlike(16000, 2.0), 16000)
    empty = tmp_path / "no-models"
    empty.mkdir()
    out = run_cli(voice, "--checkpoints", empty)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "no trained models were found" in out.stderr and str(empty) in out.stderr


@pytest.mark.slow
def test_cli_no_speech_and_odd_file_names(tmp_path):
    noise = tmp_path / "noise.wav"
    rate, x = SOUNDS["white noise"]
    sf.write(noise, x, rate)
    odd = tmp_path / "tab\there\nnewline.wav"
    sf.write(odd, speechlike(16000, 2.0), 16000)
    out = run_cli(odd, noise, "--whisper", WHISPER_DIR)
    assert out.returncode == 1, out.stderr  # the noise failed
    lines = out.stdout.splitlines()
    assert len(lines) == 2  # one line per file, whatever its name holds
    name, _label, cells = lines[0].split("\t")  # file, answer, every model's answer
    assert name == str(tmp_path / "tab\\there\\nnewline.wav")
    assert {cell.split("=")[0] for cell in cells.split()} == FAMILIES  # every model running, with or without Whisper
    assert lines[1].startswith(f"{noise}\terror: {NO_SPEECH}")


# The 18 corpus clips the earlier gate (Silero at 16 kHz straight into the speech, 0.25 s of regions) called
# "no speech": mostly shouted CREMA-D lines. Each is real speech and must pass.
ONCE_REFUSED = [
    f"CREMA-D/AudioWAV/{n}.opus"
    for n in (
        "1008_IEO_ANG_HI",
        "1010_IEO_FEA_HI",
        "1029_IEO_HAP_HI",
        "1055_DFA_FEA_XX",
        "1055_IEO_ANG_HI",
        "1055_IEO_FEA_HI",
        "1055_IEO_HAP_LO",
        "1055_WSI_FEA_XX",
        "1058_IEO_ANG_HI",
        "1058_TSI_FEA_XX",
        "1061_IEO_ANG_HI",
        "1078_IEO_FEA_HI",
        "1079_IEO_ANG_HI",
        "1079_IEO_FEA_HI",
        "1079_TSI_FEA_XX",
        "1079_WSI_FEA_XX",
    )
] + ["RAVDESS/Actor_18/03-01-05-02-02-01-18.opus", "RAVDESS/Actor_20/03-01-03-02-02-02-20.opus"]


@needs_corpus
@pytest.mark.parametrize("clip", ONCE_REFUSED)
def test_shouted_speech_passes_the_gate(clip):
    from emotion_core.vad import MIN_SPEECH_SCORE, enough_speech

    activity = speech_activity(prepare_speech(load_audio(DATA_DIR / clip)))
    assert enough_speech(activity) and activity.score > MIN_SPEECH_SCORE


def test_the_gate_score_separates_speech_from_the_synthetic_sounds():
    from emotion_core.vad import MIN_SPEECH_SCORE

    voice = speech_activity(prepare_speech(speechlike(16000, 2.0)))
    sounds = {name: speech_activity(prepare_speech(load_audio(src))).score for name, src in SOUNDS.items()}
    assert voice.score >= MIN_SPEECH_SCORE > max(sounds.values()), sounds


def test_the_onnx_model_hears_what_the_torchscript_model_hears():
    """Issue 25: the app's Silero runs in ONNX Runtime; its regions and gate score are the TorchScript model's
    (on which the gate's threshold was chosen), on speech, on the non-speech sounds and on corpus clips."""
    sources = {"speechlike": (16000, speechlike(16000, 6.0, seed=5)), **SOUNDS}
    if (DATA_DIR / VOICE).is_file():
        sources.update({clip: DATA_DIR / clip for clip in (VOICE, *ONCE_REFUSED[:4])})
    for name, src in sources.items():
        x = prepare_speech(load_audio(src))
        onnx, torchscript = speech_activity(x), speech_activity(x, onnx=False)
        assert abs(onnx.score - torchscript.score) < 1e-3, name
        assert np.allclose(onnx.regions, torchscript.regions, atol=0.05) if onnx.regions else not torchscript.regions, (
            name
        )


def test_the_lean_loop_gives_the_wrappers_probabilities_and_runs_side_by_side():
    """The app computes Silero's chunk probabilities itself (vad.chunk_probabilities) instead of through the
    package's OnnxWrapper: the very same numbers, chunk for chunk, also for a clip that ends mid-chunk; and with the
    state kept per call, requests running it at once on other clips get their own clip's numbers."""
    import threading

    import soxr
    import torch

    from emotion_core import vad

    clips = [speechlike(16000, s, seed=k) for k, s in enumerate((2.0, 3.3, 5.01))]
    wanted = []
    for clip in clips:
        x = soxr.resample(clip, 16000, vad.VAD_RATE).astype(np.float32)
        wrapper = vad._Recorder(vad._model(True))  # the package's wrapper, as get_speech_timestamps calls it
        with torch.inference_mode():
            vad._silero().get_speech_timestamps(torch.from_numpy(x), wrapper, sampling_rate=vad.VAD_RATE)
        got = vad.chunk_probabilities(vad._model(True).session, x)
        np.testing.assert_array_equal(got, np.float32(wrapper.probabilities))
        wanted.append(speech_activity(clip))
    side_by_side = [None] * (3 * len(clips))

    def run(k):
        side_by_side[k] = speech_activity(clips[k % len(clips)])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(side_by_side))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert side_by_side == wanted * 3


@pytest.mark.slow  # a fresh interpreter imports torch
def test_loading_the_voice_detector_keeps_torchs_threads():
    """silero_vad's import sets torch's threads to 1 for the whole process; the app chose its own count (cores /
    EMOTION_CONCURRENCY) and must keep it after the first request's voice detection."""
    code = (
        "import numpy as np, torch; torch.set_num_threads(2); from emotion_core.vad import speech_activity; "
        "speech_activity(np.zeros(16000, dtype=np.float32)); print(torch.get_num_threads())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "2"
