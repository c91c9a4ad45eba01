"""The guessing game's rules: clips in a per-session order, one score per clip, listeners as a lower bound,
act it out. Pure functions over the session dict; no model needed."""

from types import SimpleNamespace

import numpy as np
import pytest

from emotion_core.labels import LABELS
from webapp import game
from webapp.examples import example_clips, game_clips


def clip(label, votes=(), dataset="CREMA-D"):
    return SimpleNamespace(path=f"/clips/{label}.opus", label=label, dataset=dataset, votes=tuple(votes))


def probs(label, sure=0.6):
    p = np.full(len(LABELS), (1 - sure) / (len(LABELS) - 1))
    p[LABELS.index(label)] = sure
    return p


def test_each_clip_plays_once_before_any_repeats():
    clips = [clip(lab) for lab in LABELS]
    g = game.new_game(seed=3)
    order = []
    for _ in range(len(clips)):
        g = game.next_clip(g, clips)
        order.append(g["clip"])
        g = game.score_guess(g, "angry", clips[g["clip"]].label, {}, ())
    assert sorted(order) == list(range(len(clips)))
    g = game.next_clip(g, clips)  # all played: a new cycle starts
    assert g["played"] == [g["clip"]]
    with pytest.raises(ValueError):
        game.next_clip(g, [])


def test_a_session_plays_the_whole_shipped_game_pool_before_any_repeat_and_never_a_try_it_clip():
    """Issue 27: the game served Try it's clips (once the very clip just analysed). Its own pool now: a session
    hears each of its clips once, none of them listed on Try it, and a new round of the pool does not start
    with the clip just heard."""
    pool = game_clips()
    listed = {e.path for e in example_clips()}
    assert len(pool) >= len(LABELS)
    for seed in range(5):
        g, heard = game.new_game(seed=seed), []
        for _ in range(2 * len(pool)):
            g = game.next_clip(g, pool)
            heard.append(pool[g["clip"]].path)
            g = game.score_guess(g, "sad", pool[g["clip"]].label, {}, ())
        first, second = heard[: len(pool)], heard[len(pool) :]
        assert sorted(first) == sorted(second) == sorted(c.path for c in pool)
        assert second[0] != first[-1]
        assert not listed & set(heard)


@pytest.mark.slow
def test_the_app_plays_its_game_pool_and_lists_none_of_it(environment, tmp_path):
    environment(EMOTION_TEMP_DIR=str(tmp_path / "app-temp"))  # a temporary directory no running app owns
    import app

    played, listed = {c.path for c in app.GAME_CLIPS}, {e.path for e in app.EXAMPLES}
    assert played == {c.path for c in game_clips()} and listed and not played & listed


def test_a_round_scores_you_each_model_and_the_listeners():
    c = clip("angry", votes=[("angry", 80.0)])
    g = game.next_clip(game.new_game(seed=1), [c])
    answers = game.model_answers(
        {"cnn1d": probs("angry"), "lstm": probs("sad"), "ensemble": probs("angry", 0.4)}, c.label
    )
    assert answers["lstm"].label == "sad" and answers["lstm"].target_probability == pytest.approx(0.4 / 6)
    g = game.score_guess(g, "angry", c.label, answers, c.votes)
    assert (g["rounds"], g["you"], g["models"], g["listener_rounds"]) == (
        1,
        1,
        {"cnn1d": 1, "lstm": 0, "ensemble": 1},
        1,
    )
    assert g["listener_points"] == pytest.approx(0.8)
    again = game.score_guess(g, "sad", c.label, answers, c.votes)  # a second guess for the same clip
    assert again == g
    board = dict((who, share) for who, _, share in game.scoreboard(g))
    assert board["You"] == 1 and board["LSTM"] == 0 and board["Average listener (CREMA-D clips)"] == pytest.approx(0.8)
    reveal = game.reveal_markdown("angry", c, answers)
    assert "It was **angry**" in reveal and "angry** (80%)" in reveal and "| LSTM | sad |" in reveal


def test_the_listeners_score_is_one_plain_percentage():
    """Their points are shares of listeners (0.75 for a clip 75% of them got right): the board once said
    "at least 0.8 of 1" beside "75%". Now: on how many clips, and one percentage, a lower bound."""
    c = clip("angry", votes=[("angry", 75.0)])
    g = game.next_clip(game.new_game(seed=1), [c])
    g = game.score_guess(g, "sad", c.label, game.model_answers({"lstm": probs("angry")}, c.label), c.votes)
    row = next(line for line in game.scoreboard_markdown(g).splitlines() if "listener" in line)
    assert row == "| Average listener (CREMA-D clips) | on 1 clip | at least 75% |"
    assert "| You | 0 of 1 | 0% |" in game.scoreboard_markdown(g)


def test_listeners_count_only_when_they_said_the_truth_and_clips_without_votes_do_not_count():
    assert game.listener_share((("neutral", 59.0),), "fearful") == 0.0  # majority said something else
    assert game.listener_share((("angry", 37.2), ("disgust", 58.6)), "disgust") == pytest.approx(0.586)
    assert game.listener_share((), "sad") is None
    g = game.next_clip(game.new_game(seed=2), [clip("sad", dataset="RAVDESS")])
    g = game.score_guess(g, "sad", "sad", {}, ())
    assert g["listener_rounds"] == 0 and "listener" not in game.scoreboard_markdown(g)
    with pytest.raises(ValueError):
        game.score_guess(game.next_clip(g, [clip("sad")]), "bored", "sad", {}, ())


def test_act_it_out_names_a_new_emotion_and_counts_who_heard_it():
    g = game.new_game(seed=5)
    seen = set()
    for _ in range(20):
        last = g["target"]
        g, target = game.act_target(g)
        assert target in LABELS and target != last
        seen.add(target)
    assert len(seen) > 3
    g = {**g, "target": "happy"}
    answers = game.model_answers({"cnn1d": probs("happy"), "whisper": probs("neutral")}, "happy")
    g = game.score_act(g, answers)
    assert g["heard"] == {"cnn1d": 1, "whisper": 0} and g["acted"] == 1
    text = game.act_markdown(g, answers)
    assert "You meant **happy**" in text and "Heard as happy by: 1D CNN." in text
