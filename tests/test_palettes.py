"""One palette for models, another for emotions, used by every figure; the How-it-works charts read the
committed reports; the explanation shares the spectrogram's time axis and one colour scale."""

import json
from itertools import combinations, product

import numpy as np
import pytest

from emotion_core.features import DEFAULT_FEATURES
from emotion_core.labels import LABELS, MODEL_NAMES
from webapp import plots, report_figures

MIN_DELTA_E = 18  # CIE76 colour difference: clearly different colours at a glance


def lab(hex_colour):
    """'#rrggbb' -> CIE L*a*b* (D65)."""
    rgb = np.array([int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    rgb = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ rgb
    f = np.cbrt(np.maximum(xyz / [0.95047, 1, 1.08883], 0.008856**3))
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_model_and_emotion_palettes_never_look_alike():
    assert set(plots.LABEL_COLOURS) == set(LABELS) and set(plots.MODEL_COLOURS) == set(MODEL_NAMES)
    for (m, cm), (e, ce) in product(plots.MODEL_COLOURS.items(), plots.LABEL_COLOURS.items()):
        assert np.linalg.norm(lab(cm) - lab(ce)) > MIN_DELTA_E, f"model {m} looks like emotion {e}"
    for palette in (plots.MODEL_COLOURS, plots.LABEL_COLOURS):
        for (a, ca), (b, cb) in combinations(palette.items(), 2):
            assert np.linalg.norm(lab(ca) - lab(cb)) > MIN_DELTA_E, f"{a} looks like {b}"


def test_figures_colour_models_and_emotions_from_their_own_palette():
    p = {m: np.full(len(LABELS), 1 / len(LABELS)) for m in plots.MODEL_COLOURS}
    bars = plots.probabilities_figure(p)
    assert [t.marker.color for t in bars.data] == list(plots.MODEL_COLOURS.values())
    assert [t.name for t in bars.data] == list(MODEL_NAMES.values())
    timeline = plots.timeline_figure([(s, s + 3) for s in (0, 1, 2)], np.full((3, len(LABELS)), 1 / len(LABELS)), 5.0)
    assert {t.name: t.line.color for t in timeline.data} == plots.LABEL_COLOURS
    assert timeline.layout.yaxis.title.text  # the timeline's y axis says what it shows
    uar = report_figures.uar_figure(report_figures.load_reports())
    assert {t.marker.color for t in uar.data if t.type == "bar"} <= set(plots.MODEL_COLOURS.values())


def test_explanation_shares_the_spectrogram_time_axis_and_one_colour_scale():
    cfg = DEFAULT_FEATURES
    audio_frames, start_s = 180, 0.9  # a 1.8 s clip, centred in a 3 s window with silence padding
    window = np.full((cfg.n_mels, cfg.window_frames), cfg.pad_value, dtype=np.float32)
    left = (cfg.window_frames - audio_frames) // 2
    rng = np.random.default_rng(0)
    window[:, left : left + audio_frames] = rng.normal(-5, 1, (cfg.n_mels, audio_frames))
    maps = {"cnn1d": rng.uniform(0, 0.2, window.shape), "whisper": rng.uniform(0, 0.6, window.shape)}
    maps["cnn1d"][:, :left] = 0.9  # a large "drop" on the padding must not be drawn or set the scale
    fig = plots.explanation_figure(window, maps, start_s, {"cnn1d": "sad", "whisper": "happy"}, duration_s=3.0)
    heat = [t for t in fig.data if t.type == "heatmap"]
    for t in heat:
        assert len(t.x) == audio_frames and t.x[0] == pytest.approx(start_s)  # speech where the spectrogram has it
    overlays = heat[1::2]
    peak = float(maps["whisper"][:, left : left + audio_frames].max())
    assert [t.zmax for t in overlays] == [pytest.approx(peak)] * 2
    assert [t.showscale for t in overlays] == [True, False]
    assert fig.layout.xaxis.range == (0, 3.0) and fig.layout.yaxis.title.text == "frequency (Hz)"


def test_how_it_works_charts_read_the_reports_and_add_a_classroom_column(tmp_path):
    clean = json.loads((report_figures.REPORT_DIR / "test.json").read_text())
    clean = {k: v for k, v in clean.items() if k not in ("condition", "conditions")}  # the clean results alone
    (tmp_path / "test.json").write_text(json.dumps(clean))
    reports = report_figures.load_reports(tmp_path)
    assert list(reports) == ["clean"]
    fig = report_figures.uar_figure(reports)
    first = next(t for t in fig.data if t.type == "bar")
    entry = clean["models"][next(iter(clean["models"]))]
    assert list(first.y[:-1]) == [v["uar"] for v in entry["per_dataset"].values()]
    assert first.y[-1] == pytest.approx(np.mean([v["uar"] for v in entry["per_dataset"].values()]))
    human = [s for s in fig.layout.shapes if s.name and "human listeners" in s.name]
    assert len(human) == 1 and {human[0].y0, human[0].y1} == {report_figures.HUMAN_LISTENER_ACCURACY}
    # classroom results of the same shape: a second panel beside the clean one
    classroom = json.loads(json.dumps(clean))
    for m in classroom["models"].values():
        for v in m["per_dataset"].values():
            v["uar"] /= 2
    (tmp_path / "classroom.json").write_text(json.dumps(classroom))
    reports = report_figures.load_reports(tmp_path)
    fig = report_figures.uar_figure(reports)
    bars = [t for t in fig.data if t.type == "bar"]
    assert len(bars) == 2 * len(clean["models"]) and {t.xaxis for t in bars} == {"x", "x2"}
    assert bars[len(clean["models"])].y[0] == pytest.approx(first.y[0] / 2)
    cm = report_figures.confusion_figure(reports, "cnn1d", "classroom").data[0]
    counts = np.asarray(clean["models"]["cnn1d"]["confusion"], float)
    assert np.allclose(np.asarray(cm.z, float), counts / counts.sum(1, keepdims=True))


def test_the_listeners_line_is_drawn_across_crema_d_only():
    """Cao et al. measured listeners on CREMA-D: the 40.9% line spans the CREMA-D group of each panel, not the
    RAVDESS, SAVEE or corpus-balanced groups."""
    fig = report_figures.uar_figure(report_figures.load_reports())
    datasets = list(next(t for t in fig.data if t.type == "bar").x)
    k = datasets.index("CREMA-D")  # a category's group spans its index +- 0.5
    spans = [(t.x[0], t.x[-1]) for t in fig.data if t.type != "bar"]  # a line drawn as a trace spans its x
    spans += [(s.x0, s.x1) for s in fig.layout.shapes if s.name and "human listeners" in s.name]
    assert len(spans) == len({t.xaxis for t in fig.data if t.type == "bar"})  # one line in each panel
    for a, b in spans:
        assert isinstance(a, float) and k - 0.5 <= a < b <= k + 0.5, (a, b, datasets)


def test_how_it_works_reads_the_classroom_results_that_train_evaluate_writes_beside_the_clean_ones(tmp_path):
    """`train.evaluate --condition both` keeps the clean results in "models" and adds conditions.classroom."""
    clean = json.loads((report_figures.REPORT_DIR / "test.json").read_text())
    room = json.loads(json.dumps({"models": clean["models"]}))
    for m in room["models"].values():
        for v in m["per_dataset"].values():
            v["uar"] /= 3
    both = {**clean, "condition": "both", "conditions": {"clean": {"models": clean["models"]}, "classroom": room}}
    (tmp_path / "test.json").write_text(json.dumps(both))
    reports = report_figures.load_reports(tmp_path)
    assert list(reports) == ["clean", "classroom"]
    name = next(iter(clean["models"]))
    first_ds = next(iter(clean["models"][name]["per_dataset"]))
    assert reports["classroom"]["models"][name]["per_dataset"][first_ds]["uar"] == pytest.approx(
        clean["models"][name]["per_dataset"][first_ds]["uar"] / 3
    )


def test_how_it_works_shows_every_condition_the_report_holds(tmp_path):
    """A report of all four conditions (train.evaluate --condition all): four panels, two a row, each titled."""
    clean = json.loads((report_figures.REPORT_DIR / "test.json").read_text())
    conds = {}
    for k, c in enumerate(report_figures.CONDITIONS):
        models = json.loads(json.dumps(clean["models"]))
        for m in models.values():
            for v in m["per_dataset"].values():
                v["uar"] /= k + 1
        conds[c] = {"models": models}
    (tmp_path / "test.json").write_text(json.dumps({**clean, "condition": "all", "conditions": conds}))
    reports = report_figures.load_reports(tmp_path)
    assert list(reports) == list(report_figures.CONDITIONS)
    fig = report_figures.uar_figure(reports)
    bars = [t for t in fig.data if t.type == "bar"]
    assert {t.xaxis for t in bars} == {"x", "x2", "x3", "x4"}
    assert fig.layout.yaxis3.domain[1] < fig.layout.yaxis.domain[0]  # the young panels sit under the others
    titles = {a.text for a in fig.layout.annotations}
    assert {report_figures.PANEL_TITLES[c] for c in report_figures.CONDITIONS} <= titles
    young = next(t for t in bars if t.xaxis == "x3")
    assert young.y[0] == pytest.approx(next(t for t in bars if t.xaxis == "x").y[0] / 3)
