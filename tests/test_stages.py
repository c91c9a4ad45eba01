"""Answers in two stages (issue 25): the quick families first, Whisper's answer on the same windows after.

The recognizer and the service on synthesised speech; the page's two events (app.on_audio, app.on_more) in
this process, with the Whisper encoder made to fail, or a new clip arriving, while it reads (a torch forward
pre-hook on the real encoder's first layer: the crash or the upload happens in the middle of stage 2)."""

import threading

import numpy as np
import pytest
import soundfile as sf

from emotion_core.recognizer import Recognizer
from webapp import service
from webapp.stages import BackgroundThreads, FirstStagesFirst, PendingAnswers

from .shared_paths import WHISPER_DIR, needs_whisper
from .test_load_audio import speechlike


def test_a_new_clip_voids_the_waiting_stage_and_a_cleared_page_holds_nothing():
    pending = PendingAnswers(hold_s=60)
    a = pending.new_clip("page")
    assert pending.put("page", a, "first stage of A") and len(pending) == 1
    b = pending.new_clip("page")  # a new clip before stage 2 of A ran: A's first stage is dropped
    assert len(pending) == 0 and not pending.is_latest("page", a) and pending.is_latest("page", b)
    assert not pending.put("page", a, "late first stage of A")  # A's stage 1 finishing after B started is not kept
    assert pending.put("page", b, "first stage of B")
    assert pending.take("page") == (b, "first stage of B") and pending.take("page") is None
    assert pending.is_latest("page", b)  # taken, still the page's clip: its stage 2 may show its result
    assert not pending.is_latest("other page", b)
    pending.forget("page")
    assert not pending.is_latest("page", b)
    assert not pending.put(None, pending.new_clip(None), "a script without a page")  # nothing to come back for


def test_a_closed_page_leaves_nothing_waiting(tmp_path):
    from webapp.uploads import Uploads

    pending = PendingAnswers()
    uploads = Uploads(tmp_path, page_gone=pending.forget)  # as app.py wires them
    uploads.page_opened("page")
    uploads.page_opened("page")  # two heartbeat streams of one page (a reconnect)
    token = pending.new_clip("page")
    pending.put("page", token, "first stage")
    uploads.page_closed("page")
    assert len(pending) == 1  # one stream still open: the page is there
    uploads.page_closed("page")
    assert len(pending) == 0 and not pending.is_latest("page", token)


def test_nothing_waits_past_its_hold():
    pending = PendingAnswers(hold_s=0.0)
    t = pending.new_clip("page")
    pending.put("page", t, "first stage")
    assert pending.purge() == 1 and pending.take("page") is None and len(pending) == 0


def test_a_second_stage_gives_way_while_a_first_stage_runs():
    """Whisper work waits for the first stages of a class: a second stage asked to start while a first stage runs
    starts only after that one (and one that begins meanwhile) has ended."""
    order = FirstStagesFirst(at_most_s=60.0, settle_s=0.01)
    events = []
    first_running, release_first, release_next = threading.Event(), threading.Event(), threading.Event()

    def first_stage(name, started, release):
        with order.first_stage():
            started.set()
            release.wait(30)
            events.append(f"{name} ends")

    next_running = threading.Event()
    threads = [threading.Thread(target=first_stage, args=("first", first_running, release_first))]
    threads[0].start()
    assert first_running.wait(30)

    def second_stage():
        order.second_stage_may_start()
        events.append("second starts")

    threads.append(threading.Thread(target=second_stage))
    threads[1].start()
    threads.append(threading.Thread(target=first_stage, args=("next", next_running, release_next)))
    threads[2].start()  # another pupil's first stage arrives while the second stage waits
    assert next_running.wait(30)
    release_first.set()
    threads[0].join(30)
    assert events == ["first ends"]  # the second stage still waits for the other first stage
    release_next.set()
    for t in threads:
        t.join(30)
    assert events == ["first ends", "next ends", "second starts"]


def test_work_no_pupil_waits_for_waits_until_no_stage_runs():
    """wait_until_idle (the ONNX export after a fresh install): it waits for a running second stage as well as a
    first one, and starts once neither runs; with a stage that never ends it still starts after its limit."""
    order = FirstStagesFirst(at_most_s=60.0, settle_s=0.01)
    events, second_running, release = [], threading.Event(), threading.Event()

    def second_stage():
        with order.second_stage():
            second_running.set()
            release.wait(30)
            events.append("second ends")

    def export():
        order.wait_until_idle()
        events.append("export starts")

    threads = [threading.Thread(target=second_stage), threading.Thread(target=export)]
    threads[0].start()
    assert second_running.wait(30)
    threads[1].start()
    threads[1].join(0.3)
    assert events == []  # still waiting for the second stage
    release.set()
    for t in threads:
        t.join(30)
    assert events == ["second ends", "export starts"]
    with order.first_stage():  # a stage that never ends while it asks: the limit holds
        waited = threading.Thread(target=order.wait_until_idle, args=(0.2,))
        waited.start()
        waited.join(30)
        assert not waited.is_alive()


def test_a_second_stage_never_waits_forever():
    order = FirstStagesFirst(at_most_s=0.2, settle_s=0.01)
    with order.first_stage():  # a first stage that never ends while the second asks
        done = threading.Thread(target=order.second_stage_may_start)
        done.start()
        done.join(30)
        assert not done.is_alive()
    idle = FirstStagesFirst(at_most_s=3600.0, settle_s=0.01)  # no first stage: it starts without its hour's wait
    starts = threading.Thread(target=idle.second_stage_may_start)
    starts.start()
    starts.join(60)
    assert not starts.is_alive()


def test_a_second_stage_runs_at_background_priority_and_its_answer_or_failure_comes_back():
    """BackgroundThreads: the work runs on a thread the OS ranks below the caller's (a higher niceness), and the
    caller gets its result, or its exception, as if it had run the work itself."""
    import os

    background = BackgroundThreads(workers=2)

    def niceness():
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def crash():
        raise RuntimeError("stage 2 crashed")

    mine = niceness()
    assert background.run(niceness) == min(19, mine + background.nice) > mine
    assert niceness() == mine  # the caller's own thread keeps its priority
    assert background.run(sorted, [3, 1, 2]) == [1, 2, 3]
    with pytest.raises(RuntimeError, match="stage 2 crashed"):
        background.run(crash)


@pytest.fixture(scope="module")
def recognizer():
    return Recognizer(device="cpu", whisper=str(WHISPER_DIR) if WHISPER_DIR.is_dir() else None)


@needs_whisper
def test_two_stages_answer_as_one_on_the_same_clip(recognizer):
    quick, slow = recognizer.stages
    assert slow == ["whisper"] and "whisper" not in quick
    clip = (16000, speechlike(16000, 7.0, seed=3))
    first = service.analyse(clip, recognizer, families=quick)
    assert first.prediction.pending == ("whisper",) and first.api["pending"] == ["whisper"]
    assert set(first.prediction.models) == set(quick) and first.prediction.lead in quick
    assert "still listening" in first.summary
    done = service.analyse_more(first, recognizer)
    assert done.prediction.clip is first.prediction.clip  # the same windows of the same clip
    assert done.spectrogram is first.spectrogram and done.api["pending"] == [] and "still listening" not in done.summary
    whole = service.classify(clip, recognizer)
    assert list(done.prediction.models) == list(whole.models) and done.prediction.lead == whole.lead
    for name, out in whole.models.items():
        np.testing.assert_allclose(
            done.prediction.models[name].window_probabilities, out.window_probabilities, atol=1e-5
        )
    assert done.api["timeline"] == whole.to_json()["timeline"] and len(done.api["timeline"]) > 1


def test_without_whisper_there_is_one_stage(tmp_path):
    import shutil

    from .shared_paths import CHECKPOINTS

    for f in ("cnn1d", "lstm"):
        shutil.copy(CHECKPOINTS / f"{f}.pt", tmp_path / f"{f}.pt")
    rec = Recognizer(tmp_path, "cpu")
    assert rec.stages == [["cnn1d", "lstm"]]
    pred = rec.predict_all(speechlike(16000, 2.0))
    assert pred.pending == () and pred.to_json()["pending"] == [] and list(pred.models) == rec.names  # with their mix


# --- the page's two events, in this process -------------------------------------------------------------
@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """app.py imported (its Recognizer with Whisper), and two clips of different lengths as uploads."""
    import gradio as gr

    import app

    folder = tmp_path_factory.mktemp("clips")
    clips = {}
    for name, seconds in (("a", 6.0), ("b", 2.5)):
        clips[name] = folder / f"{name}.wav"
        sf.write(clips[name], speechlike(16000, seconds, seed=len(name) + int(seconds)), 16000)
    return app, clips, gr.Request(session_hash="pupil-1")


def encoder_hook(app, action):
    """Run action() when the Whisper encoder starts reading (its first convolution: stage 2 under way); returns
    the hook's handle."""
    return app.RECOGNIZER.encoder.module.conv1.register_forward_pre_hook(lambda module, args: action())


@pytest.mark.slow
@needs_whisper
def test_the_first_stage_comes_first_and_the_second_completes_it(page):
    app, clips, request = page
    first = app.on_audio(str(clips["a"]), request)
    spectrogram, bars, _timeline, summary, answer, _window, _explanation, where, pipeline = first
    assert answer["pending"] == ["whisper"] and "whisper" not in answer["models"] and "still listening" in summary
    assert spectrogram is not None and bars is not None and len(where.data) >= 3  # a point per quick model
    second = app.on_more(request)
    bars2, _timeline2, summary2, answer2, _window2, where2, pipeline2 = second
    assert answer2["pending"] == [] and answer2["lead"] == app.RECOGNIZER.lead and "still listening" not in summary2
    assert answer2["duration_s"] == answer["duration_s"] == 6.0
    for name, out in answer["models"].items():  # the quick families' answers are those of the first stage
        assert answer2["models"][name]["probabilities"] == out["probabilities"]
    assert pipeline2 is not None and len(where2.data) > len(where.data)  # Whisper's point joins
    assert app.on_more(request) == (app.gr.skip(),) * 7  # nothing waits any more


@pytest.mark.slow
@needs_whisper
def test_a_failing_second_stage_keeps_the_first_stages_result(page):
    app, clips, request = page
    first = app.on_audio(str(clips["a"]), request)

    def crash():
        raise RuntimeError("CUDA out of memory (stage 2 crashed mid-request)")

    handle = encoder_hook(app, crash)
    try:
        bars, timeline, summary, answer, window, where, pipeline = app.on_more(request)
    finally:
        handle.remove()
    skip = app.gr.skip()
    assert (bars, timeline, answer, window, where, pipeline) == (skip,) * 6  # the first stage's figures and JSON stay
    assert "could not answer this time" in summary and "still listening" not in summary
    assert summary.splitlines()[0] == first[3].splitlines()[0]  # the first stage's headline stays
    again = app.on_audio(str(clips["b"]), request)  # and the next clip is answered in full
    assert app.on_more(request)[3]["lead"] == app.RECOGNIZER.lead and again[4]["duration_s"] == 2.5


@pytest.mark.slow
@needs_whisper
def test_a_new_clip_during_stage_2_discards_the_old_stage_2_result(page):
    app, clips, request = page
    app.on_audio(str(clips["a"]), request)
    newer = {}

    def pupil_uploads_b():
        if not newer:  # once: B's own stage 1 runs no encoder, B's stage 2 must not retrigger this
            newer["first"] = app.on_audio(str(clips["b"]), request)

    handle = encoder_hook(app, pupil_uploads_b)
    try:
        old = app.on_more(request)  # A's Whisper answer is ready only after B was uploaded
    finally:
        handle.remove()
    assert old == (app.gr.skip(),) * 7  # A's stage 2 draws nothing over B's first stage
    assert newer["first"][4]["duration_s"] == 2.5 and newer["first"][4]["pending"] == ["whisper"]
    complete = app.on_more(request)[3]  # B's stage 2
    assert complete["duration_s"] == 2.5 and complete["pending"] == [] and complete["lead"] == app.RECOGNIZER.lead
