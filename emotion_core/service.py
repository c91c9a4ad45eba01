"""One request of the app or its API: audio in, the answer, the figures and a plain-language summary out.
app.py only lays these out; everything here runs without Gradio."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from . import plots
from .audio import load_audio
from .recognizer import ENSEMBLE, Prediction, Recognizer
from .vad import speech_regions

LOW_CONFIDENCE = 0.40  # below this top probability a model's answer is called uncertain
MAX_DISPLAY_FRAMES = 3000  # spectrogram columns sent to the browser (30 s at full resolution)
MAX_PITCH_S = 120  # s: pitch contour only for clips up to this long


@dataclass
class Analysis:
    prediction: Prediction
    api: dict  # the JSON answer of the classify API
    summary: str  # markdown
    spectrogram: go.Figure
    probabilities: go.Figure
    timeline: go.Figure | None  # only for clips longer than one model window
    best_window: dict  # {"log_mel": (n_mels, frames) array, "start_s": float}: what the explanation explains


def classify(source, recognizer: Recognizer) -> Prediction:
    """Any audio source load_audio takes -> every model's answer (windows over speech for long clips)."""
    return recognizer.predict_all(load_audio(source), vad=speech_regions)


def analyse(source, recognizer: Recognizer) -> Analysis:
    pred = classify(source, recognizer)
    clip = pred.clip
    lm = clip.log_mel.float().cpu().numpy()
    step = int(np.ceil(lm.shape[1] / MAX_DISPLAY_FRAMES))
    shown = np.log(np.exp(lm[:, : lm.shape[1] // step * step]).reshape(lm.shape[0], -1, step).mean(2)) if step > 1 else lm
    speech = clip.speech if step == 1 and len(clip.speech) <= MAX_PITCH_S * 16000 else None
    spectrogram = plots.spectrogram_figure(shown, clip.speech_s[0], pred.duration_s, speech, frame_step=step)
    bars = plots.probabilities_figure({n: o.probabilities for n, o in pred.models.items()})
    api = pred.to_json()
    timeline = plots.timeline_figure(api["timeline"], pred.duration_s, _lead(pred)) if api["timeline"] else None
    lead = pred.models[_lead(pred)]
    w = int(lead.window_probabilities.max(1).argmax())
    best = {"log_mel": clip.windows[w].float().cpu().numpy(), "start_s": clip.times_s[w][0]}
    return Analysis(pred, api, summary_markdown(pred, recognizer.unavailable), spectrogram, bars, timeline, best)


def _lead(pred: Prediction) -> str:
    return ENSEMBLE if ENSEMBLE in pred.models else next(iter(pred.models))


def summary_markdown(pred: Prediction, unavailable: dict[str, str] | None = None) -> str:
    """Each model's top label and confidence, agreement, and a visible note when in doubt."""
    lead = _lead(pred)
    top = pred.models[lead]
    conf = float(top.probabilities.max())
    families = {n: o for n, o in pred.models.items() if n != ENSEMBLE}
    votes = {o.label for o in families.values()}
    lines = [f"### {'Ensemble' if lead == ENSEMBLE else lead}: **{top.label}** ({conf:.0%})", "",
             "| model | answer | confidence | time |", "|---|---|---|---|"]
    for name, o in pred.models.items():
        lines.append(f"| {name} | {o.label} | {o.probabilities.max():.0%} | {o.latency_ms:.0f} ms |")
    total_ms = sum(o.latency_ms for o in pred.models.values())
    lines += ["", f"Ran on **{pred.device}** in {total_ms:.0f} ms of model time; {pred.duration_s:.1f} s of audio"
              + (f", {len(pred.clip.times_s)} windows over the speech." if len(pred.clip.times_s) > 1 else ".")]
    notes = []
    if len(votes) == 1 and len(families) > 1:
        notes.append(f"All {len(families)} models agree.")
    elif len(families) > 1:
        notes.append("**The models disagree** (" + ", ".join(f"{n}: {o.label}" for n, o in families.items()) + ").")
    if conf < LOW_CONFIDENCE or len(votes) > 1:
        notes.append("⚠️ **Treat this answer as uncertain.** The models learned from actors reading sentences in a "
                     "studio; a real voice, microphone and room sound different, so low confidence and disagreement are "
                     "common here. That is part of what this demo teaches.")
    for fam, why in (unavailable or {}).items():
        if fam == "whisper":
            notes.append(f"The Whisper model is not running here: {why}")
    return "\n".join(lines + [""] + notes)
