"""The figures have the traces they should; the explanation points at the audio; the batch CLI."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from emotion_core.labels import LABELS, MODEL_NAMES
from emotion_core.recognizer import Recognizer
from webapp import service
from webapp.explain import occlusion_maps
from webapp.plots import explanation_figure

from .shared_paths import CHECKPOINTS, FAMILIES, REPO, WHISPER_DIR, needs_corpus, needs_whisper, real_speech
from .test_load_audio import speechlike


@pytest.fixture(scope="module")
def recognizer():
    return Recognizer(CHECKPOINTS, "cpu", str(WHISPER_DIR))


@needs_whisper
def test_short_clip_figures(recognizer):
    a = service.analyse((16000, speechlike(16000, 2.0)), recognizer)
    names = [t.name for t in a.probabilities.data]
    assert names == [MODEL_NAMES[n] for n in recognizer.names]  # one bar per model in each group, ensemble included
    assert all(list(t.y) == list(LABELS) for t in a.probabilities.data)  # horizontal: labels readable on a phone
    assert a.probabilities.layout.barmode == "group"
    heat = [t for t in a.spectrogram.data if t.type == "heatmap"]
    assert len(heat) == 1 and np.asarray(heat[0].z).shape[0] == 80
    ticks = list(a.spectrogram.layout.yaxis3.ticktext)  # yaxis2 is the pitch axis of the top row
    assert ticks[:2] == ["100", "500"] and "4k" in ticks  # Hz on the mel scale
    assert {t.name for t in a.spectrogram.data} >= {"loudness (dB)", "pitch (Hz)"}
    assert a.timeline is None and a.api["timeline"] == []
    assert a.summary.startswith(f"### {MODEL_NAMES[recognizer.lead]}: ") and "| Whisper encoder |" in a.summary


def test_progress_reports_each_real_stage_in_order(recognizer):
    seen = []
    service.analyse((16000, speechlike(16000, 2.0)), recognizer, progress=lambda f, text: seen.append((f, text)))
    texts = [t for _, t in seen]
    assert texts[:2] == ["decoding the audio", "finding the speech"] and texts[-1] == "drawing the pictures"
    assert [t.split(" reads ")[0] for t in texts[2:-1]] == [MODEL_NAMES[n] for n in recognizer.models]
    assert all("reads 1 window of 3 s" in t for t in texts[2:-1])
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and 0 <= fractions[0] and fractions[-1] < 1


@needs_corpus
def test_long_clip_has_a_timeline_on_the_spectrogram_axis(recognizer):
    clip, _pause = real_speech()
    a = service.analyse((16000, clip), recognizer)
    assert a.timeline is not None and {t.name for t in a.timeline.data} == set(LABELS)
    duration = len(clip) / 16000
    assert list(a.timeline.layout.xaxis.range) == list(a.spectrogram.layout.xaxis2.range) == [0, duration]
    assert len(a.api["timeline"]) == len(a.timeline.data[0].x) >= 3


def test_pitch_contour_follows_the_voice():
    from webapp.pitch import pitch_contour

    t = np.arange(32000) / 16000
    f0 = pitch_contour((0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 200)
    assert np.nanmedian(f0) == pytest.approx(200, rel=0.03)


def test_the_pitch_line_neither_drops_nor_spikes_at_syllable_edges():
    """Syllables of a voice whose pitch glides down, each starting with 40 ms of hiss (a consonant): the line is
    drawn on the voiced frames, within a semitone of the true pitch (it once dropped an octave at their edges)."""
    from emotion_core.features import DEFAULT_FEATURES, log_mel
    from webapp import plots

    rate, seconds, f0 = 16000, 3.0, 160.0
    voice = speechlike(rate, seconds, f0).astype(np.float64)  # pitch f0 * (1.2 - 0.3 t / seconds)
    t = np.arange(voice.size) / rate
    syllables = np.sin(2 * np.pi * 4 * t) > -0.2  # speechlike's syllables
    rng = np.random.default_rng(1)
    for onset in np.flatnonzero(np.diff(syllables.astype(int)) == 1):
        voice[onset : onset + 640] += 0.08 * rng.standard_normal(len(voice[onset : onset + 640]))
    voice = voice.astype(np.float32)
    fig = plots.spectrogram_figure(log_mel(torch.from_numpy(voice), DEFAULT_FEATURES).numpy(), 0.0, seconds, voice)
    pitch = next(tr for tr in fig.data if tr.name == "pitch (Hz)")
    x, y = np.asarray(pitch.x, dtype=float), np.asarray(pitch.y, dtype=float)
    drawn = np.isfinite(y)
    truth = f0 * (1.2 - 0.3 * x[drawn] / seconds)
    assert np.abs(12 * np.log2(y[drawn] / truth)).max() < 1.0  # semitones
    near = [syllables[max(0, int((c - 0.03) * rate)) : int((c + 0.03) * rate)] for c in x]  # within 30 ms
    voiced, silent = np.array([v.all() for v in near]), np.array([not v.any() for v in near])
    assert drawn[voiced].mean() > 0.7 and not drawn[silent].any()  # the syllables, and nothing between them


def test_spectrogram_ticks_do_not_crowd_and_its_colour_bar_reads_plainly():
    from webapp import plots

    fig = plots.spectrogram_figure(np.log(np.random.default_rng(0).random((80, 300)) + 1e-3), 0.0, 3.0)
    axis = fig.layout.yaxis3  # the spectrogram's frequency axis (80 mel bands)
    assert np.diff(axis.tickvals).min() >= 8  # a tenth of the axis between labels: 100 and 250 Hz were 6 bands apart
    bar = next(tr for tr in fig.data if tr.type == "heatmap").colorbar
    assert "−" not in bar.title.text and "loudest" in bar.title.text  # a title, not a formula
    assert bar.ticktext[0] == "−80" and bar.ticktext[-1] == "0"  # dB from the loudest, on the ticks


def test_occlusion_explanation(recognizer):
    a = service.analyse((16000, speechlike(16000, 2.0)), recognizer)
    window = torch.as_tensor(a.best_window["log_mel"])
    maps, labels = occlusion_maps(recognizer, window)
    assert set(maps) == set(recognizer.names) and all(m.shape == tuple(window.shape) for m in maps.values())
    assert all(lab in LABELS for lab in labels.values())
    fig = explanation_figure(a.best_window["log_mel"], maps, a.best_window["start_s"], labels)
    assert len([t for t in fig.data if t.type == "heatmap"]) == 2 * len(maps)


@pytest.mark.slow
@needs_whisper
def test_predict_cli(tmp_path):
    good = tmp_path / "voice.flac"
    sf.write(good, speechlike(22050, 2.0), 22050)
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    cmd = [sys.executable, "-m", "webapp.predict", str(good), str(bad), "--whisper", str(WHISPER_DIR)]
    out = subprocess.run(cmd + ["--json"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stderr  # one file failed
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines[0]["file"] == str(good) and set(lines[0]["models"]) == FAMILIES
    assert lines[1]["file"] == str(bad) and "could not be read" in lines[1]["error"]
    plain = subprocess.run(cmd[:4] + cmd[5:], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0 and plain.stdout.count("\n") == 1 and f"{lines[0]['lead']}=" in plain.stdout


def test_a_long_clip_reaches_the_browser_at_the_plots_width_with_its_pitch():
    """60 s of a voice whose pitch glides: at most MAX_COLUMNS columns of whole-dB levels (one byte a cell),
    the loudness and the pitch contour on the same columns, the pitch still following the voice."""
    from webapp import plots

    sr, seconds = 16000, 60.0
    t = np.arange(int(sr * seconds)) / sr
    f0 = 150 + 50 * t / seconds  # 150 Hz rising to 200 Hz
    voice = (0.3 * np.sin(2 * np.pi * np.cumsum(f0) / sr)).astype(np.float32)
    lm = torch.log(torch.rand(80, int(seconds * 100)) + 1e-3).numpy()
    fig = plots.spectrogram_figure(lm, 0.0, seconds, voice)
    heat = next(tr for tr in fig.data if tr.type == "heatmap")
    z = np.asarray(heat.z)
    assert (
        z.shape[0] == 80
        and plots.MAX_COLUMNS // 2 < z.shape[1] <= plots.MAX_COLUMNS
        and z.dtype == np.uint8
        and z.max() == plots.DB_RANGE
    )
    pitch = next(tr for tr in fig.data if tr.name == "pitch (Hz)")
    loud = next(tr for tr in fig.data if tr.name == "loudness (dB)")
    assert len(pitch.y) == len(loud.y) == len(heat.x) == z.shape[1]
    p = np.asarray(pitch.y, dtype=float)
    assert np.isfinite(p).mean() > 0.9
    assert abs(np.nanmedian(p[:50]) - 152) < 10 and abs(np.nanmedian(p[-50:]) - 198) < 10
    assert len(fig.to_json()) < 200_000  # bytes: the whole figure, not the 1.9 MB that 6000 float columns take


def test_display_columns_average_and_voiced_median():
    from webapp.pitch import voiced_median
    from webapp.plots import display_columns

    x = np.arange(12, dtype=float).reshape(2, 6)
    assert np.array_equal(display_columns(x, 1), x)
    assert np.array_equal(display_columns(x, 3), [[1, 4], [7, 10]])
    f0 = np.array([100, np.nan, 120, np.nan, np.nan, np.nan, 200, 210, 220])
    assert np.allclose(display_columns(f0, 3, voiced_median), [100, np.nan, 210], equal_nan=True)
