"""The "Guess the emotion" game: a pupil against the models and against human listeners, and "act it out".

Plain functions over a plain dict (the browser session's gr.State): nothing about the pupil is kept
anywhere else. A clip is any object with .path, .label, .dataset and .votes, where votes is
((answer, percent of listeners), ...) for CREMA-D clips (the release gives the listeners' majority
answer and its share) and () for clips without listener data.

Scores: you and each model get 1 point per right answer. The average listener gets, per clip with
listener data, the share of listeners who gave the true emotion; the release names only the majority
answer, so when most listeners said something else that share is unknown and counted as 0: the
listeners' score is a lower bound ("at least")."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from emotion_core.labels import LABELS, MODEL_NAMES

PERCENT = 100.0
LISTENER = "Average listener (CREMA-D clips)"  # the scoreboard's row of the listeners (a lower bound)
# the reveal's picture (webapp.circumplex)
CIRCUMPLEX_NOTE = (
    "_Below, each emotion sits where psychologists place it: pleasant or not (across), calm or aroused "
    "(up). Each model's point is the average of those places, weighted by its probabilities: between "
    "two emotions when it hesitates between them._"
)


@dataclass(frozen=True)
class ModelAnswer:
    label: str  # the model's answer
    confidence: float  # its probability for that answer
    target_probability: float  # its probability for the emotion asked about (the truth, or the acted one)


def new_game(seed: int | None = None) -> dict:
    """A fresh session: no clip on screen, every score at zero."""
    return {
        "seed": random.randrange(2**31) if seed is None else seed,
        "played": [],
        "clip": None,
        "answered": True,
        "rounds": 0,
        "you": 0,
        "models": {},
        "listener_points": 0.0,
        "listener_rounds": 0,
        "target": None,
        "prompts": 0,
        "acted": 0,
        "heard": {},
    }


def next_clip(game: dict, clips: list) -> dict:
    """Pick a clip not yet played this session, in a per-session random order: every clip of the pool plays
    once before any plays again; then a new round of the pool starts, never with the clip just played.
    Returns the new game state (the given one is not changed)."""
    if not clips:
        raise ValueError("There are no clips to play.")
    game = {**game, "played": list(game["played"])}
    fresh = [i for i in range(len(clips)) if i not in game["played"]]
    if not fresh:
        last = game["played"][-1] if game["played"] else None
        game["played"], fresh = [], [i for i in range(len(clips)) if i != last or len(clips) == 1]
    i = random.Random(game["seed"] + len(game["played"]) + game["rounds"]).choice(fresh)
    game["played"].append(i)
    game["clip"], game["answered"] = i, False
    return game


def clip_sound(path) -> tuple[int, np.ndarray]:
    """A clip as the game plays it: (16000, int16 samples). Sound only, so that its file name gives nothing away;
    int16, which Gradio's player takes as it is (anything else it converts, with a warning per clip)."""
    from emotion_core.audio import SAMPLE_RATE, load_audio

    return SAMPLE_RATE, np.round(np.clip(load_audio(path), -1.0, 1.0) * 32767).astype(np.int16)


def listener_share(votes, truth: str) -> float | None:
    """Share (0-1) of listeners who answered `truth`; 0 when their majority said something else; None when
    there is no listener data for the clip."""
    if not votes:
        return None
    return sum(p for answer, p in votes if answer == truth) / PERCENT


def model_answers(probabilities: dict, target: str) -> dict[str, ModelAnswer]:
    """{model: (n_labels,) probabilities} -> {model: ModelAnswer} about the emotion `target`."""
    k = LABELS.index(target)
    out = {}
    for name, p in probabilities.items():
        p = [float(x) for x in p]
        best = max(range(len(LABELS)), key=p.__getitem__)
        out[name] = ModelAnswer(LABELS[best], p[best], p[k])
    return out


def score_guess(game: dict, guess: str, truth: str, answers: dict[str, ModelAnswer], votes) -> dict:
    """The game after the pupil guessed `guess` for a clip whose true emotion is `truth`. A clip scores
    once: a second guess for the same clip changes nothing."""
    if guess not in LABELS:
        raise ValueError(f"unknown emotion {guess!r}")
    if game["answered"]:
        return game
    game = {**game, "models": dict(game["models"]), "answered": True, "rounds": game["rounds"] + 1}
    game["you"] += guess == truth
    for name, a in answers.items():
        game["models"][name] = game["models"].get(name, 0) + (a.label == truth)
    share = listener_share(votes, truth)
    if share is not None:
        game["listener_points"] += share
        game["listener_rounds"] += 1
    return game


def scoreboard(game: dict) -> list[tuple[str, str, float | None]]:
    """[(player, "right of rounds", share right)] for you, each model and the average listener, best first
    after you. The listeners' points are shares of listeners, so their row says on how many clips, and its
    share (a lower bound) is their only score: one plain form, a percentage."""
    n = game["rounds"]
    rows = [("You", f"{game['you']} of {n}", game["you"] / n if n else None)]
    models = sorted(game["models"].items(), key=lambda kv: -kv[1])
    rows += [(MODEL_NAMES.get(m, m), f"{k} of {n}", k / n if n else None) for m, k in models]
    if game["listener_rounds"]:
        lr = game["listener_rounds"]
        rows.append((LISTENER, f"on {lr} clip{'s' * (lr != 1)}", game["listener_points"] / lr))
    return rows


def scoreboard_markdown(game: dict) -> str:
    if not game["rounds"]:
        return "_No rounds yet: press **Play a clip**._"
    lines = ["| player | right | share |", "|---|---|---|"]
    lines += [
        f"| {who} | {right} | {'at least ' * (who == LISTENER)}{share:.0%} |" for who, right, share in scoreboard(game)
    ]
    return "\n".join(lines)


def votes_text(votes) -> str:
    """What the listeners said, in words."""
    if not votes:
        return "No listener votes for this clip (only CREMA-D clips have them)."
    return "Listeners who heard the voice only said: " + ", ".join(f"**{a}** ({p:.0f}%)" for a, p in votes) + "."


def reveal_markdown(
    guess: str, clip, answers: dict[str, ModelAnswer], threshold: float | None = None, unsure: str | None = None
) -> str:
    """The truth, the pupil's guess, the listeners' votes and every model's answer; with a threshold (webapp.certainty)
    an answer less sure than it reads "not sure", and `unsure` says why the models together are not sure."""
    truth = clip.label
    mark = "Right!" if guess == truth else "Not this time."
    lines = [
        f"### {mark} It was **{truth}**. You said **{guess}**.",
        "",
        f"{votes_text(clip.votes)} (Actor of {clip.dataset}.)",
        "",
        "| model | heard | sure | right? |",
        "|---|---|---|---|",
    ]
    for name, a in answers.items():
        heard = f"{a.label} (not sure)" if threshold is not None and a.confidence < threshold else a.label
        lines.append(
            f"| {MODEL_NAMES.get(name, name)} | {heard} | {a.confidence:.0%} | {'yes' if a.label == truth else 'no'} |"
        )
    if unsure:
        lines += ["", f"**Not sure:** {unsure}."]
    lines += ["", CIRCUMPLEX_NOTE]
    return "\n".join(lines)


def act_target(game: dict) -> tuple[dict, str]:
    """A new emotion to act out, different from the last one."""
    prompts = game.get("prompts", 0) + 1
    rng = random.Random(game["seed"] * 7 + prompts)
    target = rng.choice([lab for lab in LABELS if lab != game["target"]])
    return {**game, "target": target, "prompts": prompts}, target


def score_act(game: dict, answers: dict[str, ModelAnswer]) -> dict:
    """The game after the pupil acted out game["target"]: count, per model, the takes it heard as meant."""
    game = {**game, "heard": dict(game["heard"]), "acted": game["acted"] + 1}
    for name, a in answers.items():
        game["heard"][name] = game["heard"].get(name, 0) + (a.label == game["target"])
    return game


def act_markdown(game: dict, answers: dict[str, ModelAnswer]) -> str:
    """Which models heard the emotion the pupil meant, and how sure each was of it."""
    target = game["target"]
    heard = [MODEL_NAMES.get(n, n) for n, a in answers.items() if a.label == target]
    head = f"### You meant **{target}**. " + (
        f"Heard as {target} by: {', '.join(heard)}."
        if heard
        else "No model heard it; acted emotion is hard, even for people."
    )
    lines = [head, "", f"| model | heard | its probability for {target} | as meant? |", "|---|---|---|---|"]
    for name, a in answers.items():
        lines.append(
            f"| {MODEL_NAMES.get(name, name)} | {a.label} | {a.target_probability:.0%} "
            f"| {'yes' if a.label == target else 'no'} |"
        )
    lines += [
        "",
        f"So far this session ({game['acted']} take{'s' * (game['acted'] != 1)}): "
        + ", ".join(f"{MODEL_NAMES.get(n, n)} {k}" for n, k in game["heard"].items())
        + " heard what you meant.",
    ]
    return "\n".join(lines)
