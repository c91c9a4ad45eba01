"""The words on the page: the responsible-use statement and the "How it works" tab, built from the
checkpoints' own metadata and the committed test report (reports/test.json)."""

from __future__ import annotations

import json

from emotion_core.labels import MODEL_SHORT_NAMES
from emotion_core.paths import PROJECT_DIR

TEST_REPORT = PROJECT_DIR / "reports" / "test.json"
HUMAN_BASELINE = (
    "Human listeners recognised the intended emotion in **40.9%** of CREMA-D clips from the voice "
    "alone (Cao et al., 2014): acted emotion is ambiguous even to people."
)

HEADER = """# How does a computer hear emotion? Four models, side by side
Record your voice or upload a clip. Four kinds of model say which of seven emotions they hear.

> **A teaching demo of how emotion recognition works and fails.** Trained on acted English speech (actors reading
> sentences in a studio), so it is often wrong on real voices. **Your recording is kept only while this page
> shows it, under a random name, and deleted when you replace it, clear it or close the page; it is never kept
> beyond that.**
> **Not for judging people:** inferring the emotions of students or employees is prohibited in the EU
> (AI Act, Art. 5(1)(f)).
"""

CARDS = {
    "cnn1d": (
        "1D CNN on acoustic features",
        "40 MFCCs (a compact description of the spectrum's shape), loudness, and "
        "how both change, frame by frame; a convolutional network slides over time.",
    ),
    "lstm": (
        "LSTM on feature sequences",
        "the same frame features read in order by a bidirectional recurrent network "
        "that weighs the moments that matter most (attention).",
    ),
    "cnn2d": (
        "2D CNN on the spectrogram image",
        "the mel spectrogram as a picture, read by EfficientAT mn04, a small "
        "MobileNetV3 pretrained on AudioSet (about two million labelled sound clips from videos) and fine-tuned "
        "end to end for emotion.",
    ),
    "whisper": (
        "Whisper speech encoder",
        "OpenAI's Whisper-base encoder, trained on 680,000 hours of speech, turns the "
        "spectrogram into speech features; small trained heads learned emotion from them.",
    ),
    "ensemble": ("Ensemble", "a weighted average of the models' probabilities, weights chosen on validation speakers."),
}


def _report() -> dict | None:
    try:
        return json.loads(TEST_REPORT.read_text())
    except (OSError, ValueError):
        return None


# Each family in two sentences a 14-year-old can follow (the technical card is folded below each).
STORIES = {
    "cnn1d": "It measures a few dozen things about your voice a hundred times a second, such as how loud it is and "
    "which pitches are strong. It then looks for short patterns in those numbers, like a sudden loud rise.",
    "lstm": "It reads the same voice measurements in order, from the first moment to the last, like reading a "
    "sentence word by word. It remembers what came before and pays most attention to the moments that matter.",
    "cnn2d": "It treats the spectrogram as a picture and looks at it with a network that first learned to tell "
    "hundreds of everyday sounds apart (dogs, music, engines, speech) in two million video clips. It finds "
    "shapes in the picture, like bright bands that rise or shake.",
    "whisper": "It starts from Whisper, a program that learned to write down speech from 680,000 hours of people "
    "talking. A small extra part learned to read emotion from what Whisper already understands about a voice.",
    "ensemble": "It asks the models together and mixes their answers, giving more say to the ones that were right "
    "more often. Like asking several friends, the mix is often better than most of them alone.",
}

PIPELINE = """## From sound to answer
1. **Audio in.** Any file or recording is decoded, mixed to mono and resampled to 16 kHz. Silence at the start and
   end is cut and the loudness is normalised, so a quiet laptop and a loud studio look alike.
2. **Mel spectrogram.** 100 times a second, the energy in 80 frequency bands spaced like human hearing (the mel
   scale). This picture is what every model reads.
3. **Four models** turn 3-second windows of it into seven probabilities; a long clip is read window by window over
   its speech, giving the timeline.

Below: the last clip you analysed in **Try it** (before that, an example clip), from sound to answer.
"""

RESULTS_INTRO = (
    "## How often is each model right?\n**Speaker-independent testing:** every number here comes from speakers "
    "the models never heard in training. UAR is the average, over the seven emotions, of the share of clips "
    "of that emotion the model got right (chance: 14%). Each panel is one way of hearing the same clips: "
    "as recorded in the studio; in a simulated classroom (a room, other pupils talking, a laptop "
    "microphone); in a pupil's voice (each adult actor's voice made that of a child or teenager: higher "
    "pitch, shorter vocal tract); and a pupil's voice in the classroom. " + HUMAN_BASELINE
)


def family_names(recognizer) -> list[str]:
    """The outputs running here (the ensemble when two or more of its members run), and the ensemble's story
    when it is one family alone: the story says why no mix answers."""
    return recognizer.names + (["ensemble"] if recognizer.ensemble_alone else [])


def frozen_encoder_millions(encoder) -> float:
    """Millions of the frozen Whisper encoder's parameters (whisper-base: 20.6 M); encoder: the recognizer's
    EncoderRuntime, or None."""
    if encoder is None:
        return 20.6
    return encoder.parameter_count / 1e6


def story(name: str, recognizer) -> str:
    """The family in two sentences a 14-year-old can follow (the ensemble's says so when one model holds all its
    weight: train.ensemble keeps the best single model unless a mix beats it reliably)."""
    if name == "ensemble" and len(recognizer.ensemble) == 1:
        (only,) = recognizer.ensemble
        title = MODEL_SHORT_NAMES.get(only, only)
        return (
            f"It may mix the models' answers, but on voices they had not trained on no mix beat the {title} "
            "model reliably, so for now its answer is that model's. Mixing only helps when the models make different "
            "mistakes."
        )
    return STORIES[name]


def technical_card(name: str, recognizer) -> str:
    """What the family is, in technical words: input, network, size, training."""
    title, what = CARDS[name]
    meta = recognizer.meta.get(name, {})
    model = recognizer.models.get(name)
    params = f" {sum(p.numel() for p in model.parameters()):,} parameters" if model is not None else ""
    if model is not None and model.needs_encoder:
        params += f" trained (+ {frozen_encoder_millions(recognizer.encoder):.1f} M frozen encoder)"
    extra = ""
    members = getattr(getattr(model, "cfg", None), "members", 1)
    if members > 1:
        extra = f" {members} heads trained from different random starts answer together (their mean)."
    if meta.get("record", {}).get("distilled_from"):
        extra += (
            " Besides the true labels, it learned from the Whisper model's answers on the training clips "
            "(distillation)."
        )
    if name == "ensemble":
        extra = " Weights: " + ", ".join(f"{m} {w:.2f}" for m, w in recognizer.ensemble.items()) + "."
    return (
        f"**{title}** (`{name}`): {what}{params + '.' if params else ''}{extra} Trained on RAVDESS, CREMA-D, TESS "
        "and SAVEE (training speakers only)."
    )


def report_tables() -> str:
    """The exact numbers: the committed reports/test.md (and reports/classroom.md when it exists)."""
    parts = []
    for name in ("test.md", "classroom.md"):
        path = TEST_REPORT.parent / name
        if path.is_file():
            parts.append(f"From `reports/{name}` in the repository:\n\n" + path.read_text())
    return "\n\n".join(parts) or "_No evaluation report is committed yet._"


NUMBER_WORDS = ("no", "one", "two", "three", "four")


def unavailable_note(recognizer) -> str:
    """One sentence for the page when families are missing, e.g. "The Whisper model is not installed here;
    the other three are running." The technical reason is in the log (and in recognizer.unavailable)."""
    missing = [MODEL_SHORT_NAMES.get(f, f) for f in recognizer.unavailable]
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
