"""One request of the app or its API: audio in, the answer, the figures and a plain-language summary out.
app.py only lays these out; everything here runs without Gradio."""

from __future__ import annotations

import time
from dataclasses import dataclass

import plotly.graph_objects as go

from emotion_core.audio import SAMPLE_RATE, load_audio
from emotion_core.labels import MODEL_NAMES
from emotion_core.recognizer import ENSEMBLE, Prediction, Recognizer
from emotion_core.vad import speech_activity

from . import certainty, circumplex, plots

NOT_SURE = certainty.load_reliability().get("threshold")  # the "not sure" threshold, chosen on validation speakers
MAX_PITCH_S = 30  # s: pitch contour only for clips up to this long (Praat's pitch takes about 0.1 s for 30 s of speech)


@dataclass
class Analysis:
    prediction: Prediction
    api: dict  # the JSON answer of the classify API
    summary: str  # markdown
    spectrogram: go.Figure
    probabilities: go.Figure
    timeline: go.Figure | None  # only for clips longer than one model window
    circumplex: go.Figure  # where each model's answer sits among the emotions (valence, arousal)
    best_window: dict  # {"log_mel": (n_mels, frames) array, "start_s": float}: what the explanation explains


def classify(source, recognizer: Recognizer, progress=None, families=None) -> Prediction:
    """Any audio source load_audio takes -> the answers of `families` (None: every model; windows over speech for
    long clips). pred.timing_ms gets "decode" and a "total" that covers the whole answer, decoding included.

    progress(fraction, text): called at each real stage (decoding, speech detection, each model over
    its windows); None: silent."""
    stages = ["decode", "speech", *recognizer.models]

    def stage(name, n_windows=0):
        if progress is None:
            return
        text = (
            STAGE_TEXT.get(name)
            or f"{MODEL_NAMES.get(name, name)} reads {n_windows} window{'s' * (n_windows != 1)} of 3 s"
        )
        progress(stages.index(name) / (len(stages) + 1), text)

    t = time.perf_counter()
    stage("decode")
    audio = load_audio(source)
    decode_ms = (time.perf_counter() - t) * 1000
    pred = recognizer.predict_all(audio, vad=speech_activity, progress=stage, families=families)
    pred.timing_ms = {"decode": decode_ms, **pred.timing_ms, "total": (time.perf_counter() - t) * 1000}
    return pred


STAGE_TEXT = {"decode": "decoding the audio", "speech": "finding the speech", "draw": "drawing the pictures"}


def analyse(source, recognizer: Recognizer, progress=None, families=None) -> Analysis:
    """classify (the answers of `families`, None: every model), then the figures and the summary; progress as in
    classify, plus the drawing stage. With families left out, analyse_more completes the analysis."""
    pred = classify(source, recognizer, progress, families)
    if progress is not None:
        progress((len(recognizer.models) + 2) / (len(recognizer.models) + 3), STAGE_TEXT["draw"])
    clip = pred.clip
    speech = clip.speech if len(clip.speech) <= MAX_PITCH_S * SAMPLE_RATE else None
    spectrogram = plots.spectrogram_figure(
        clip.log_mel.float().cpu().numpy(), clip.speech_s[0], pred.duration_s, speech
    )
    return answer_analysis(pred, recognizer, spectrogram)


def analyse_more(first: Analysis, recognizer: Recognizer) -> Analysis:
    """The second stage of an analysis given in stages: the families `first` is still waiting for read the same
    windows of the same clip; the spectrogram stays, the answer's figures and summary are drawn again."""
    pred = recognizer.predict_more(first.prediction, first.prediction.pending)
    return answer_analysis(pred, recognizer, first.spectrogram)


def answer_analysis(pred: Prediction, recognizer: Recognizer, spectrogram: go.Figure) -> Analysis:
    """The figures and the summary of an answer (complete or a first stage), beside the clip's spectrogram."""
    probabilities = {n: o.probabilities for n, o in pred.models.items()}
    bars = plots.probabilities_figure(probabilities)
    windows = pred.clip.times_s
    lead = pred.models[pred.lead]
    timeline = (
        plots.timeline_figure(windows, lead.window_probabilities, pred.duration_s, pred.lead, not_sure=NOT_SURE)
        if len(windows) > 1
        else None
    )
    w = int(lead.window_probabilities.max(1).argmax())
    best = {
        "log_mel": pred.clip.windows[w].float().cpu().numpy(),
        "start_s": windows[w][0],
        "duration_s": pred.duration_s,
    }
    summary = summary_markdown(pred, recognizer.lead_reason_of(pred))
    return Analysis(
        pred, answer_json(pred), summary, spectrogram, bars, timeline, circumplex.circumplex_figure(probabilities), best
    )


def not_sure_reason(pred: Prediction, threshold: float | None = NOT_SURE) -> str | None:
    """Why the answer as a whole is "not sure" (certainty.verdict_unsure: the models disagree, or the lead is below
    the threshold), or None; None too when no threshold was chosen (no reports/reliability.json)."""
    if threshold is None:
        return None
    return certainty.verdict_unsure({n: o.probabilities for n, o in pred.models.items()}, pred.lead, threshold)


def answer_json(pred: Prediction, threshold: float | None = NOT_SURE) -> dict:
    """The API's answer: Prediction.to_json with the "not sure" rule applied: "not_sure" (why the answer as a whole
    is not sure, or null) and each model's "not_sure" (its top probability below the threshold; false without one)."""
    answer = pred.to_json()
    flags = certainty.not_sure({n: o.probabilities for n, o in pred.models.items()}, threshold) if threshold else {}
    for name, out in answer["models"].items():
        out["not_sure"] = bool(flags.get(name, False))
    answer["not_sure"] = not_sure_reason(pred, threshold)
    return answer


def summary_markdown(pred: Prediction, lead_reason: str = "", second_stage_failed: bool = False) -> str:
    """The lead model's answer and why it leads, each model's top label and confidence, one total time,
    agreement, and a visible note when in doubt. Per-model times are in the JSON, not here."""
    lead = pred.lead or next(iter(pred.models))
    top = pred.models[lead]
    conf = float(top.probabilities.max())
    families = {n: o for n, o in pred.models.items() if n != ENSEMBLE}
    votes = {o.label for o in families.values()}
    unsure = not_sure_reason(pred)
    lines = [f"### {MODEL_NAMES.get(lead, lead)}: **{top.label}** ({conf:.0%})" + (", not sure" if unsure else ""), ""]
    if pred.pending:
        waiting = " and ".join(MODEL_NAMES.get(n, n) for n in pred.pending)
        lines += [
            f"⚠️ {waiting} could not answer this time: this is the quicker models' answer."
            if second_stage_failed
            else f"⏳ **First answer.** {waiting} is still listening; its answer follows in a moment.",
            "",
        ]
    lines += [lead_reason, ""] if lead_reason else []
    lines += ["| model | answer | confidence |", "|---|---|---|"]
    for name, o in pred.models.items():
        sure = NOT_SURE is None or float(o.probabilities.max()) >= NOT_SURE
        lines.append(
            f"| {MODEL_NAMES.get(name, name)} | {o.label} "
            f"| {o.probabilities.max():.0%}{'' if sure else ' (not sure)'} |"
        )
    total_s = pred.timing_ms.get("total", 0.0) / 1000
    lines += [
        "",
        f"{'First answer in' if pred.pending else 'Answered in'} **{total_s:.2f} s** on {pred.device} "
        f"for {pred.duration_s:.1f} s of audio"
        + (f" ({len(pred.clip.times_s)} windows over the speech)." if len(pred.clip.times_s) > 1 else "."),
    ]
    notes = []
    if len(votes) == 1 and len(families) > 1:
        notes.append(f"All {len(families)} models agree.")
    elif len(families) > 1:
        notes.append(
            "**The models disagree** ("
            + ", ".join(f"{MODEL_NAMES.get(n, n)}: {o.label}" for n, o in families.items())
            + ")."
        )
    if unsure:
        notes.append(
            f"⚠️ **Not sure**: {unsure}. " + certainty.threshold_sentence(NOT_SURE) + " The models learned from "
            "actors reading sentences in a studio; a real voice, microphone and room sound different, so this is "
            "common here. That is part of what this demo teaches."
        )
    return "\n".join(lines + [""] + notes)
