"""The words on the page: the responsible-use statement and the "How it works" tab, built from the
checkpoints' own metadata and the committed test report (reports/test.json)."""
from __future__ import annotations

import json

from .labels import LABELS, MODEL_NAMES
from .paths import PROJECT_DIR

TEST_REPORT = PROJECT_DIR / "reports" / "test.json"
HUMAN_BASELINE = ("Human listeners recognised the intended emotion in **40.9%** of CREMA-D clips from the voice "
                  "alone (Cao et al., 2014): acted emotion is ambiguous even to people.")

HEADER = """# How does a computer hear emotion? Four models, side by side
Record your voice or upload a clip. Four kinds of model say which of seven emotions they hear.

> **A teaching demo of how emotion recognition works and fails.** Trained on acted English speech (actors reading
> sentences in a studio), so it is often wrong on real voices. **Recordings are processed in memory and never stored.**
> **Not for judging people:** inferring the emotions of students or employees is prohibited in the EU (AI Act, Art. 5(1)(f)).
"""

CARDS = {
    "cnn1d": ("1D CNN on acoustic features", "40 MFCCs (a compact description of the spectrum's shape), loudness, and "
              "how both change, frame by frame; a convolutional network slides over time."),
    "lstm": ("LSTM on feature sequences", "the same frame features read in order by a bidirectional recurrent network "
             "that weighs the moments that matter most (attention)."),
    "cnn2d": ("2D CNN on the spectrogram image", "the mel spectrogram as a picture, read by EfficientNet-Lite0, an image "
              "network pretrained on ImageNet photos and adapted to spectrograms."),
    "whisper": ("Whisper speech encoder", "OpenAI's Whisper-base encoder, trained on 680,000 hours of speech, turns the "
                "spectrogram into speech features; small trained heads learned emotion from them."),
    "ensemble": ("Ensemble", "a weighted average of the models' probabilities, weights chosen on validation speakers."),
}


def _report() -> dict | None:
    try:
        return json.loads(TEST_REPORT.read_text())
    except (OSError, ValueError):
        return None


def _results_table(name: str, report: dict | None) -> str:
    if not report or name not in report["models"]:
        return "_Not evaluated yet._"
    m = report["models"][name]
    per = m["per_dataset"]
    cb = sum(v["uar"] for v in per.values()) / max(len(per), 1)
    room = report.get("conditions", {}).get("classroom", {}).get("models", {}).get(name)
    if room is None or report.get("condition") == "classroom":
        rows = ["| test set | clips | accuracy | UAR |", "|---|---|---|---|"]
        rows += [f"| {d} | {v['n']} | {v['accuracy']:.0%} | {v['uar']:.0%} |" for d, v in per.items()]
        rows.append(f"| **all (corpus-balanced UAR {cb:.0%})** | {m['overall']['n']} | {m['overall']['accuracy']:.0%} | {m['overall']['uar']:.0%} |")
    else:  # clean and through a simulated classroom (room, noise, laptop microphone, browser codec)
        rp = room["per_dataset"]
        rcb = sum(v["uar"] for v in rp.values()) / max(len(rp), 1)
        rows = ["| test set | clips | accuracy | UAR | accuracy in a classroom | UAR in a classroom |", "|---|---|---|---|---|---|"]
        rows += [f"| {d} | {v['n']} | {v['accuracy']:.0%} | {v['uar']:.0%} | {rp[d]['accuracy']:.0%} | {rp[d]['uar']:.0%} |"
                 for d, v in per.items() if d in rp]
        rows.append(f"| **all (corpus-balanced UAR {cb:.0%}; in a classroom {rcb:.0%})** | {m['overall']['n']} | "
                    f"{m['overall']['accuracy']:.0%} | {m['overall']['uar']:.0%} | {room['overall']['accuracy']:.0%} | {room['overall']['uar']:.0%} |")
    cm = m["confusion"]
    conf = ["| true \\ said | " + " | ".join(l[:4] for l in LABELS) + " |", "|---|" + "---|" * len(LABELS)]
    conf += [f"| {lab} | " + " | ".join(str(x) for x in row) + " |" for lab, row in zip(LABELS, cm) if sum(row)]
    return "\n".join(rows) + "\n\nConfusion matrix (rows: true emotion, columns: the model's answer):\n\n" + "\n".join(conf)


def how_it_works(recognizer) -> str:
    report = _report()
    parts = ["""## From sound to answer
1. **Audio in.** Any file or recording is decoded, mixed to mono and resampled to 16 kHz. Silence at the start and end is cut and the loudness is normalised, so a quiet laptop and a loud studio look alike.
2. **Mel spectrogram.** 100 times a second, the energy in 80 frequency bands spaced like human hearing (the mel scale). This picture is what every model reads.
3. **Four models** turn 3-second windows of it into seven probabilities; a long clip is read window by window over its speech, giving the timeline.

**Speaker-independent testing:** every number below comes from speakers the models never heard in training. """ + HUMAN_BASELINE]
    for name in recognizer.names:
        title, what = CARDS[name]
        meta = recognizer.meta.get(name, {})
        model = recognizer.models.get(name)
        params = f"{sum(p.numel() for p in model.parameters()):,} parameters" if model is not None else ""
        if name == "whisper":
            params += " trained (+ 20.6 M frozen encoder)"
        extra = ""
        members = getattr(getattr(model, "cfg", None), "members", 1)
        if name == "whisper" and members > 1:
            extra = f" {members} heads trained from different random starts answer together (their mean)."
        if name == "cnn2d" and meta.get("record", {}).get("chosen_variant"):
            extra = f" Backbone: {meta['record']['chosen_variant']} (chosen on validation speakers)."
        if meta.get("record", {}).get("distilled_from"):
            extra += " Besides the true labels, it learned from the Whisper model's answers on the training clips (distillation)."
        if name == "ensemble":
            extra = " Weights: " + ", ".join(f"{m} {w:.2f}" for m, w in recognizer.ensemble.items()) + "."
        parts.append(f"### {title} (`{name}`)\n{what} {params}.{extra} Trained on RAVDESS, CREMA-D, TESS and SAVEE "
                     f"(training speakers only).\n\n{_results_table(name, report)}")
    return "\n\n".join(parts)


NUMBER_WORDS = ("no", "one", "two", "three", "four")


def unavailable_note(recognizer) -> str:
    """One sentence for the page when families are missing, e.g. "The Whisper model is not installed here;
    the other three are running." The technical reason is in the log (and in recognizer.unavailable)."""
    missing = [("Whisper" if f == "whisper" else MODEL_NAMES.get(f, f)) for f in recognizer.unavailable]
    if not missing:
        return ""
    running = len(recognizer.models)
    if not running:
        return "> ⚠️ No trained models are installed here."
    names = " and ".join([", ".join(missing[:-1]), missing[-1]] if len(missing) > 1 else missing)
    verb = "model is" if len(missing) == 1 else "models are"
    others = NUMBER_WORDS[running] if running < len(NUMBER_WORDS) else str(running)
    rest = "the other one is running" if running == 1 else f"the other {others} are running"
    return f"> ⚠️ The {names} {verb} not installed here; {rest}."
