"""Every model family side by side: load the checkpoints once, predict all of them in one call.

Per clip the work is done once: prepare_speech, one log-mel, one set of 3 s windows; the frame features
(MFCC = DCT of the log-mel) are shared by cnn1d and lstm, and the Whisper encoder reads the same windows.

The lead model (the page's headline, the CLI's answer, the API's "lead") is the output that the committed
evaluation says is most accurate among those running: the highest validation score (train.validation), as
train.ensemble measured it for every family alike (ensemble.json), else from the checkpoint's record. Test
scores are never used to choose.
The ensemble's weights are renormalised over its members that are running; it is an output when at least two
members with weight run, and its validation score counts only when every weighted member runs (that is the
mix that was measured; a renormalised subset was not). An ensemble with one weighted member (train.ensemble
keeps the best single family unless a mix beats it reliably) is that family: the family answers, under its
own name, and the headline says why there is no mix.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from .audio import SAMPLE_RATE, AudioError, prepare_speech_span
from .calibration import file_sha256, load_calibration
from .features import FeatureConfig, frame_features, log_mel, speech_window_starts, windows
from .labels import LABELS
from .lead import lead_model, lead_reason
from .memory import fix_mmap_threshold
from .models.base import EmotionModel, load_checkpoint
from .models.onnx_runtime import family_session
from .models.registry import FAMILIES
from .models.whisper_runtime import EncoderRuntime, fast_path
from .paths import checkpoint_dir
from .prediction import ENSEMBLE, ClipWindows, ModelOutput, Prediction
from .vad import NO_SPEECH_MESSAGE, enough_speech

FAMILY_ORDER = FAMILIES
ENSEMBLE_FILE = "ensemble.json"  # {"members", "weights", "val_cb_uar"}, chosen on the validation speakers
WINDOW_BATCH = 16  # windows a family reads at once: bounds the memory of a long clip (issue 28 item 8)

log = logging.getLogger(__name__)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class NoSpeechError(AudioError):
    """The voice activity detector found too little speech to judge: an answer, not a failure of the app."""


class Recognizer:
    """All shipped families on one device. `unavailable` maps a family to the reason it is not running."""

    def __init__(
        self,
        checkpoints: str | Path | None = None,
        device: str | None = None,
        whisper: str | None = None,
        fast: bool | None = None,
        onnx_at_start: bool = False,
    ):
        """fast: the Whisper encoder with int8 linear layers (CPU only); None: the EMOTION_FAST setting.
        onnx_at_start: the Whisper encoder answers from the graph an earlier start exported, without loading it, when
        that start recorded its files as the family's encoder (EncoderRuntime); the app's start, not a library's."""
        fix_mmap_threshold()  # a long clip's arrays go back to the system once its answer is given
        self.device = device or default_device()
        self.fast = fast_path(self.device, fast)  # whether the Whisper encoder, when it runs, is int8
        self.dir = checkpoint_dir(str(checkpoints) if checkpoints else None)
        self.models: dict[str, EmotionModel] = {}
        self.meta: dict[str, dict] = {}
        self.unavailable: dict[str, str] = {}
        self.encoder: EncoderRuntime | None = None  # the shared Whisper encoder, for the family that reads it
        self.sessions: dict = {}  # family -> its ONNX Runtime session, once use_onnx has made one (CPU only)
        self.features: FeatureConfig | None = None
        self.ensemble_spec: dict = {}
        self.ensemble_weighted: set = set()
        for family in FAMILY_ORDER:
            path = self.dir / f"{family}.pt"
            if not path.is_file():
                self.unavailable[family] = f"no checkpoint at {path}"
                log.warning("%s model not running: %s", family, self.unavailable[family])
                continue
            model, meta = load_checkpoint(path, self.device)
            if tuple(meta["labels"]) != LABELS:
                raise ValueError(f"{path}: labels {meta['labels']} differ from {LABELS}")
            if self.features is None:
                self.features = meta["features"]
            elif meta["features"] != self.features:
                raise ValueError(f"{path}: its features differ from the other checkpoints'")
            if meta["family"] != family:
                raise ValueError(f"{path}: holds a {meta['family']} model, not {family}")
            if model.needs_encoder:
                try:
                    self.encoder = EncoderRuntime(model, self.device, whisper, self.fast, onnx_at_start)
                except Exception as e:  # the app runs the other families and says why
                    self.unavailable[family] = " ".join(str(e).split())
                    log.warning("%s model not running: %s", family, self.unavailable[family])
                    continue
            self.models[family] = model
            self.meta[family] = meta
        self.ensemble = self._load_ensemble()
        self.calibration = load_calibration(self.dir, self.models, self.device)  # family -> (temperature, bias)

    def use_onnx(self, directory: Path | None = None) -> bool:
        """Run the Whisper encoder (EncoderRuntime.use_onnx) and every family that exports_to_onnx in ONNX Runtime
        from now on, on a CPU: exported on first use into `directory` (onnx_runtime.default_dir()), one session per
        graph, each run with this process's torch thread count. Returns whether the Whisper encoder is in it; a
        family that fails is logged and stays in torch."""
        if self.device == "cpu":
            for name, model in self.models.items():
                if model.exports_to_onnx and name not in self.sessions:
                    try:
                        self.sessions[name] = family_session(model, torch.get_num_threads(), directory)
                    except Exception as e:  # noqa: BLE001 (torch gives the same answers)
                        log.warning("%s stays in torch: ONNX Runtime failed: %s", name, " ".join(str(e).split()))
        return self.encoder is not None and self.encoder.use_onnx(directory)

    def _load_ensemble(self) -> dict[str, float]:
        """member -> weight, renormalised over the members with weight that are running."""
        path = self.dir / ENSEMBLE_FILE
        spec = json.loads(path.read_text()) if path.is_file() else {"members": list(FAMILY_ORDER)}
        self.ensemble_spec = spec
        hashes = spec.get("checkpoint_sha256", {})  # family -> score, for the checkpoints train.ensemble measured
        self.measured = {
            f: float(v)
            for f, v in spec.get("val_cb_uar_single", {}).items()
            if f in self.models and hashes.get(f) == file_sha256(self.dir / f"{f}.pt")
        }
        weights = dict(zip(spec["members"], spec.get("weights", [1.0] * len(spec["members"])), strict=False))
        self.ensemble_weighted = {m for m, w in weights.items() if w > 0}  # the members with weight, running or not
        live = {m: w for m, w in weights.items() if m in self.models and w > 0}
        total = sum(live.values())
        return {m: w / total for m, w in live.items()} if total > 0 else {}

    @property
    def has_ensemble(self) -> bool:
        """True when the ensemble is an output (of the page, the API, the CLI): two or more of its members with
        weight run (renormalised over them when some are missing). One member alone is that member, which
        answers under its own name: the rule of train.ensemble may give all the weight to one family."""
        return len(self.ensemble) > 1

    @property
    def ensemble_alone(self) -> str | None:
        """The family the committed ensemble gives all its weight to, when it runs (train.ensemble kept it
        alone: no mix beat it reliably); else None."""
        if len(self.ensemble_weighted) != 1:
            return None
        (only,) = self.ensemble_weighted
        return only if only in self.models else None

    @property
    def names(self) -> list[str]:
        """Names of the outputs predict_all gives, in order."""
        return list(self.models) + ([ENSEMBLE] if self.has_ensemble else [])

    @property
    def stages(self) -> list[list[str]]:
        """The running families in the order the page answers with them: first those that read the log-mel or
        its frame features (milliseconds of CPU), then those that need the Whisper encoder (most of a request's
        time). A stage with no family running is left out, so a recognizer without Whisper has one stage."""
        quick = [n for n, m in self.models.items() if not m.needs_encoder]
        slow = [n for n, m in self.models.items() if m.needs_encoder]
        return [s for s in (quick, slow) if s]

    def outputs_of(self, families) -> list[str]:
        """The outputs (in `names` order) that the answers of `families` give: those families, and the ensemble
        once all its members are among them."""
        done = set(families)
        return [n for n in self.names if n in done or (n == ENSEMBLE and set(self.ensemble) <= done)]

    @property
    def validation_scores(self) -> dict[str, float]:
        """Output name -> validation score for the outputs running: the one train.ensemble measured for every
        family alike (train.validation, in ensemble.json, bound to each checkpoint's sha256), else the score in
        the checkpoint's record (a checkpoint newer than ensemble.json). The ensemble's counts only when all its
        weighted members run (see the module docstring)."""
        scores = {}
        for f, m in self.meta.items():
            val = m.get("record", {}).get("val", {})
            if f in self.models and f in self.measured:
                scores[f] = self.measured[f]
            elif f in self.models and "corpus_balanced_uar" in val:
                scores[f] = float(val["corpus_balanced_uar"])
        spec = self.ensemble_spec
        if self.has_ensemble and "val_cb_uar" in spec and self.ensemble_weighted == set(self.ensemble):
            scores[ENSEMBLE] = float(spec["val_cb_uar"])
        return scores

    @property
    def lead(self) -> str:
        """The output to headline: the most accurate on validation speakers among those running."""
        return lead_model(self.names, self.validation_scores)

    @property
    def lead_reason(self) -> str:
        return lead_reason(self.lead, self.names, self.validation_scores, self.ensemble_alone)

    def model_windows(self, audio: np.ndarray, vad=None) -> ClipWindows:
        """16 kHz mono audio -> the clip's log-mel and model windows.

        Windows are evenly spaced over the prepared speech. With `vad` (prepared speech -> vad.SpeechActivity:
        regions and score) a clip where it finds too little speech (vad.enough_speech) raises
        NoSpeechError, and a clip longer than one window gets windows sliding over its speech only."""
        cfg = self.features
        prepared = prepare_speech_span(audio)
        speech = prepared.audio
        regions = None
        if vad is not None:
            activity = vad(speech)
            if not enough_speech(activity):
                raise NoSpeechError(NO_SPEECH_MESSAGE)
            regions = activity.regions
        lm = log_mel(torch.from_numpy(speech).to(self.device), cfg)
        starts = None
        if len(speech) <= cfg.window_s * SAMPLE_RATE:
            starts = [0]  # one window; the centred STFT gives a clip of exactly window_s one frame more
        elif regions:
            starts = speech_window_starts(regions, lm.shape[1], cfg)
        wins, starts = windows(lm, cfg, starts)
        start, end = prepared.start, prepared.end
        t0, length_s = start / SAMPLE_RATE, (end - start) / SAMPLE_RATE
        times = [(t0 + s / cfg.frames_per_s, t0 + min(s / cfg.frames_per_s + cfg.window_s, length_s)) for s in starts]
        return ClipWindows(lm, speech, wins, times, (t0, end / SAMPLE_RATE))

    @torch.inference_mode()
    def window_probabilities(
        self, wins: torch.Tensor, timing_ms: dict | None = None, progress=None, batch: int = WINDOW_BATCH, families=None
    ) -> dict[str, tuple[np.ndarray, float]]:
        """(W, n_mels, frames) log-mel windows -> {family: ((W, n_labels) probabilities, ms)}, for every running
        family or those in `families`.

        Each family reads the windows `batch` at a time, so a long clip's activations (the Whisper encoder's
        above all) take the memory of one batch, not of every window at once. A derived input more than one
        family reads (the frame features of cnn1d and lstm) is computed once per batch and its time added to
        timing_ms["features"]; the Whisper encoder's time is charged to its family.
        progress: called with each family's name before it runs (None: silent)."""
        chosen = {n: m for n, m in self.models.items() if families is None or n in families}
        readers = [m.input_kind for m in chosen.values()]
        shared: dict[tuple[str, int], torch.Tensor] = {}  # (kind, first window) -> derived input of that batch
        out = {}
        for name, model in chosen.items():
            if progress is not None:
                progress(name)
            kind, parts, ms = model.input_kind, [], 0.0
            for first in range(0, len(wins), batch):
                t = time.perf_counter()
                x = shared.get((kind, first))
                if x is None:
                    x = self.derived_input(model, wins[first : first + batch])
                    if readers.count(kind) > 1:
                        shared[kind, first] = x
                        if timing_ms is not None:
                            timing_ms["features"] = timing_ms.get("features", 0.0) + (time.perf_counter() - t) * 1000
                        t = time.perf_counter()
                logits = self.sessions.get(name, model)(x).float()
                if name in self.calibration:
                    temperature, bias = self.calibration[name]
                    logits = logits / temperature + bias
                parts.append(torch.softmax(logits, dim=-1).cpu().numpy())
                del x
                if self.device.startswith("cuda"):
                    torch.cuda.synchronize()
                ms += (time.perf_counter() - t) * 1000
            out[name] = (np.concatenate(parts), ms)
        return out

    def derived_input(self, model: EmotionModel, wins: torch.Tensor) -> torch.Tensor:
        """What `model` reads, from log-mel windows: the windows, their frame features or the Whisper trunk's."""
        if model.input_kind == "frames":
            return frame_features(wins, self.features)
        if model.needs_encoder:
            return self.encoder(wins)
        return wins

    def combine(self, per_family: dict[str, np.ndarray]) -> np.ndarray:
        """Ensemble of clip (or window) probabilities: the validation-chosen weighted mean."""
        return sum(w * per_family[m] for m, w in self.ensemble.items())

    def predict_all(self, audio: np.ndarray, vad=None, progress=None, families=None) -> Prediction:
        """16 kHz mono float32 audio (from load_audio) -> the answers of `families` (None: every family) and the
        ensemble's when all its members are among them; the families left out are named in `pending`, for
        predict_more to add.

        The clip answer of a family is the mean of its window probabilities (see model_windows for `vad`).
        progress(stage, n_windows): called with "speech" before the speech is found and cut into windows,
        then with each family's name before it reads the n_windows windows (None: silent)."""
        if not self.models:
            raise RuntimeError("No trained models were found in " + str(self.dir))
        t = time.perf_counter()
        if progress is not None:
            progress("speech", 0)
        clip = self.model_windows(audio, vad)
        pred = Prediction(len(audio) / SAMPLE_RATE, self.device, LABELS, clip, pending=tuple(self.models))
        pred.timing_ms["features"] = (time.perf_counter() - t) * 1000  # speech preparation, log-mel, windows
        pred.timing_ms["total"] = pred.timing_ms["features"]
        return self.predict_more(pred, list(self.models) if families is None else families, progress)

    def predict_more(self, pred: Prediction, families, progress=None) -> Prediction:
        """Add the answers of `families` (of pred.pending) to a prediction, on the same windows of the same clip:
        the second stage of an answer given in stages. Updates pred in place (outputs in `names` order, the lead
        among the outputs answered, pending, timing_ms: "total" grows by this call's time) and returns it."""
        t = time.perf_counter()
        todo = [f for f in self.models if f in families and f in pred.pending]
        n_windows = len(pred.clip.windows)
        window_probs = self.window_probabilities(
            pred.clip.windows,
            pred.timing_ms,
            families=todo,
            progress=None if progress is None else lambda m: progress(m, n_windows),
        )
        outputs = dict(pred.models)
        for name, (wp, ms) in window_probs.items():
            p = wp.mean(0)
            outputs[name] = ModelOutput(LABELS[int(p.argmax())], p, wp, ms, name in self.calibration)
        answered = self.outputs_of(outputs)
        if self.has_ensemble and ENSEMBLE in answered and ENSEMBLE not in outputs:
            wp = self.combine({m: outputs[m].window_probabilities for m in self.ensemble})
            p = wp.mean(0)
            outputs[ENSEMBLE] = ModelOutput(LABELS[int(p.argmax())], p, wp, 0.0)
        pred.models = {n: outputs[n] for n in answered}
        pred.pending = tuple(f for f in pred.pending if f not in outputs)
        pred.lead = lead_model(answered, self.validation_scores)
        pred.timing_ms["total"] = pred.timing_ms.get("total", 0.0) + (time.perf_counter() - t) * 1000
        return pred

    def lead_reason_of(self, pred: Prediction) -> str:
        """Why pred's lead leads among the outputs pred holds (lead_reason, for the answer so far)."""
        return lead_reason(pred.lead, list(pred.models), self.validation_scores, self.ensemble_alone)

    def predict_windows(self, wins: torch.Tensor, batch: int = 64) -> dict[str, np.ndarray]:
        """Many windows at once (evaluation): (N, n_mels, frames) -> {name: (N, n_labels)}: every family running,
        and the ensemble when it is an output (an ensemble of one family is that family, measured once)."""
        out = {name: p for name, (p, _ms) in self.window_probabilities(wins, batch=batch).items()}
        if self.has_ensemble:
            out[ENSEMBLE] = self.combine(out)
        return out
