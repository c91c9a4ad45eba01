"""What each click, upload and API call of the page does: the event handlers that app.py wires to its layout.

One PageEvents holds the app's loaded parts (the recognizer, the uploads it guards, the first-stage answers
waiting for their second stage, the example and game clips, the reports) and the analysis functions app.py
wraps for a borrowed GPU (`spaces.GPU` on ZeroGPU; plain functions elsewhere). Every output tuple is in the
order of the components app.py lists for that event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import gradio as gr

from emotion_core import AudioError, settings
from emotion_core.labels import LABELS
from emotion_core.recognizer import Recognizer

from . import certainty, circumplex, game, report_figures, service
from .explain import occlusion_maps
from .plots import explanation_figure
from .stages import BackgroundThreads, FirstStagesFirst, PendingAnswers
from .uploads import Uploads

START = "Record or upload a clip to start."
log = logging.getLogger("app")


def refuse(error: Exception) -> gr.Error:
    """An ordinary input error: one log line, a readable message, no traceback."""
    log.info("refused: %s", error)
    return gr.Error(str(error), print_exception=False)


@dataclass
class PageEvents:
    """The page's and the API's handlers. `analyse(path, progress, families)`, `analyse_more(first)` and
    `classify(path, recognizer, families=None)` are service.analyse, service.analyse_more and service.classify
    bound to the recognizer and wrapped for the GPU by app.py."""

    recognizer: Recognizer
    uploads: Uploads
    pending: PendingAnswers
    analyse: Callable
    analyse_more: Callable
    classify: Callable
    examples: list = field(default_factory=list)
    game_clips: list = field(default_factory=list)
    reports: dict = field(default_factory=dict)
    reliability: dict = field(default_factory=dict)
    order: FirstStagesFirst = field(default_factory=FirstStagesFirst)
    background: BackgroundThreads | None = None  # where second stages run on a CPU (made here when left out)

    def __post_init__(self):
        # The page answers in two stages, two queue events with their own concurrency: the quick families first
        # (with the spectrogram and the summary), then the Whisper family on the same windows. Whisper work queued
        # for the rest of a class holds back nobody's first answer: on a CPU the second stages give way to first
        # stages (self.order, stages.FirstStagesFirst) and run at background priority (self.background,
        # stages.BackgroundThreads). One stage when Whisper is not running.
        if self.background is None and self.recognizer.device == "cpu":
            self.background = BackgroundThreads(settings.current().concurrency)
        stages = self.recognizer.stages
        self.first_stage = stages[0] if len(stages) > 1 else None  # None: every family at once
        self.clip_probabilities = lru_cache(maxsize=64)(self._clip_probabilities)
        self.default_pipeline = lru_cache(maxsize=1)(self._default_pipeline)

    # --- Try it: the two stages of an answer ------------------------------------------------------------------
    def on_audio(self, path, request: gr.Request, progress=gr.Progress()):
        """UI event, stage 1: spectrogram, the quick families' bars, timeline, summary, JSON, the window to
        explain, the explanation (cleared: it belonged to the previous clip), where the answers sit (circumplex)
        and the How-it-works pipeline picture (once the answer is complete). An open page keeps the clip (replay,
        Analyse again, download) until it is replaced, cleared or the page is closed; a call without an open page
        (a script) loses it with its answer."""
        page = request.session_hash if request else None
        token = self.pending.new_clip(page)  # whatever stage 2 of the page's previous clip gives is void now
        if not path:
            return gr.skip(), gr.skip(), gr.skip(), START, gr.skip(), None, None, gr.skip(), gr.skip()
        with self.uploads.in_use(path, page=page), self.order.first_stage():
            shown, analysis = self.analyse_clip(path, progress)
        if analysis is not None and analysis.prediction.pending:
            self.pending.put(page, token, analysis)
        return shown

    def analyse_clip(self, path, progress):
        """The page's outputs for a clip's first stage, and its Analysis (None when refused)."""
        if not self.recognizer.models:
            hidden = gr.update(visible=False)
            return (None, None, hidden, "No trained models are installed.", None, None, None, None, gr.skip()), None
        try:
            a = self.analyse(path, lambda fraction, text: progress(fraction, desc=text), self.first_stage)
        except AudioError as e:
            log.info("refused: %s", e)
            hidden = gr.update(value=None, visible=False)
            return (None, None, hidden, f"### ⚠️ {e}", {"error": str(e)}, None, None, None, gr.skip()), None
        progress(1.0)
        timeline = gr.update(value=a.timeline, visible=a.timeline is not None)
        pipeline = gr.skip() if a.prediction.pending else report_figures.pipeline_of_analysis(a)
        return (
            a.spectrogram,
            a.probabilities,
            timeline,
            a.summary,
            a.api,
            a.best_window,
            None,
            a.circumplex,
            pipeline,
        ), a

    def on_more(self, request: gr.Request):
        """UI event, stage 2: the families the first stage left out answer; bars, timeline, summary, JSON, the
        window to explain, where the answers sit and the pipeline picture are drawn again, unless the page has
        moved to another clip meanwhile. If it fails, the first stage's result stays and the summary says so in
        one sentence."""
        page = request.session_hash if request else None
        waiting = self.pending.take(page)
        if waiting is None:
            return (gr.skip(),) * 7
        token, first = waiting
        if self.recognizer.device == "cpu":
            self.order.second_stage_may_start()  # the cores go to the first stages of the class first
        try:
            with self.order.second_stage():
                a = self.background.run(self.analyse_more, first) if self.background else self.analyse_more(first)
        except Exception as e:  # noqa: BLE001 (the first answer stands whatever went wrong)
            log.warning("stage 2 failed: %s", " ".join(str(e).split())[:300])
            if not self.pending.is_latest(page, token):
                return (gr.skip(),) * 7
            summary = service.summary_markdown(
                first.prediction, self.recognizer.lead_reason_of(first.prediction), second_stage_failed=True
            )
            return gr.skip(), gr.skip(), summary, gr.skip(), gr.skip(), gr.skip(), gr.skip()
        if not self.pending.is_latest(page, token):
            return (gr.skip(),) * 7
        timeline = gr.update(value=a.timeline, visible=a.timeline is not None)
        return (
            a.probabilities,
            timeline,
            a.summary,
            a.api,
            a.best_window,
            a.circumplex,
            report_figures.pipeline_of_analysis(a),
        )

    def on_clear(self, request: gr.Request):
        """The player's Clear (x), or a new recording starting: no result of the old clip stays on the page, and
        its file goes unless a request still uses it."""
        self.uploads.release_page(request.session_hash if request else None)
        self.pending.forget(request.session_hash if request else None)
        return None, None, gr.update(value=None, visible=False), START, None, None, None, None

    def on_explain(self, window, progress=gr.Progress()):
        if not window:
            return None
        import torch

        progress(0.2, desc="hiding patches of the spectrogram")
        maps, labels = occlusion_maps(self.recognizer, torch.as_tensor(window["log_mel"]))
        return explanation_figure(window["log_mel"], maps, window["start_s"], labels, window.get("duration_s"))

    # --- start-up and How it works ---------------------------------------------------------------------------
    def warm_up(self):
        """An analysis of the first example clip with its How-it-works picture (default_pipeline), and both stages
        of it; then, with EMOTION_ONNX on, the Whisper encoder and the families that export move to ONNX Runtime
        (exported on a first start, read back on later ones) once no analysis is running, so that no pupil waits
        behind the export, and both stages run once more on that path."""

        def both_stages():
            if self.examples and self.first_stage:
                first = service.analyse(self.examples[0].path, self.recognizer, families=self.first_stage)
                service.analyse_more(first, self.recognizer)

        try:
            self.default_pipeline()
            both_stages()
            in_onnx = []
            if settings.current().onnx:
                self.order.wait_until_idle()
                onnx = self.recognizer.use_onnx()
                in_onnx = (["Whisper encoder"] if onnx else []) + sorted(self.recognizer.sessions)
                if in_onnx:
                    both_stages()
            log.info("warm-up done%s", f" ({', '.join(in_onnx)} in ONNX Runtime)" if in_onnx else "")
        except Exception as e:  # noqa: BLE001 (a failed warm-up costs the first request time, nothing else)
            log.warning("warm-up failed: %s", e)

    def _default_pipeline(self):
        """The How-it-works pipeline picture of the first example clip, before a clip has been analysed."""
        if not self.examples or not self.recognizer.models:
            return None
        return report_figures.pipeline_of_analysis(service.analyse(self.examples[0].path, self.recognizer))

    def on_family(self, name, condition):
        return report_figures.confusion_figure(self.reports, name, condition)

    # --- Guess the emotion and Act it out --------------------------------------------------------------------
    def _clip_probabilities(self, path: str) -> dict:
        """Every model's probabilities for one of the app's own example clips (never a user's recording)."""
        pred = self.classify(path, self.recognizer)
        return {n: tuple(o.probabilities.tolist()) for n, o in pred.models.items()}

    def on_play(self, state):
        """Guess the emotion: a new clip (not yet played this session) plays; the last reveal is cleared."""
        state = game.next_clip(state or game.new_game(), self.game_clips)
        clip = self.game_clips[state["clip"]]
        return (
            state,
            game.clip_sound(clip.path),
            "Listen, then pick the emotion you hear.",
            gr.update(value=None, visible=False),
            *[gr.update(interactive=True)] * len(LABELS),
        )

    def on_guess(self, guess, state):
        """The reveal: the truth, every model's answer, and where each answer sits among the emotions."""
        if not state or state["clip"] is None or state["answered"]:
            return state, "Press **Play a clip** first.", gr.skip(), gr.skip(), *[gr.skip()] * len(LABELS)
        clip = self.game_clips[state["clip"]]
        probabilities = self.clip_probabilities(clip.path)
        answers = game.model_answers(probabilities, clip.label)
        state = game.score_guess(state, guess, clip.label, answers, clip.votes)
        where = gr.update(value=circumplex.circumplex_figure(probabilities, truth=clip.label), visible=True)
        threshold = self.reliability.get("threshold")
        unsure = (
            certainty.verdict_unsure(probabilities, self.recognizer.lead, threshold) if threshold is not None else None
        )
        return (
            state,
            game.reveal_markdown(guess, clip, answers, threshold, unsure),
            game.scoreboard_markdown(state),
            where,
            *[gr.update(interactive=False)] * len(LABELS),
        )

    def on_act_target(self, state):
        state, target = game.act_target(state or game.new_game())
        return state, f"## Say any sentence so that it sounds **{target}**, then stop the recording.", None, ""

    def on_act(self, path, state):
        """Act it out: which models heard the emotion the pupil meant. The recording is deleted once read."""
        if not path:
            return gr.skip(), gr.skip(), gr.skip()
        with self.uploads.in_use(path):
            if not state or not state["target"]:
                return state, "Press **Give me an emotion** first.", None
            try:
                pred = self.classify(path, self.recognizer)
            except AudioError as e:
                log.info("refused: %s", e)
                return state, f"### ⚠️ {e}", None
        answers = game.model_answers({n: o.probabilities for n, o in pred.models.items()}, state["target"])
        state = game.score_act(state, answers)
        return state, game.act_markdown(state, answers), None  # the take is gone: the player is ready for the next

    # --- the JSON API ----------------------------------------------------------------------------------------
    def classify_api(self, audio):
        """JSON API: {"duration_s", "device", "lead", "models": {name: {label, probabilities, latency_ms}},
        "timeline", "timing_ms"}. The uploaded file is deleted with the answer."""
        return self._answer(audio, None)

    def classify_first_api(self, audio):
        """JSON API, first stage only: the quick families' answer, "pending" naming the families left out (the
        same answer /classify gives, less those). The uploaded file is deleted with the answer."""
        return self._answer(audio, self.first_stage)

    def _answer(self, audio, families):
        if not audio:
            raise refuse(AudioError("No audio was sent."))
        with self.uploads.in_use(audio):
            try:
                return service.answer_json(self.classify(audio, self.recognizer, families=families))
            except AudioError as e:
                raise refuse(e) from None
