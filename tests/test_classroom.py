"""train.classroom: the simulated classroom is deterministic, changes the audio in the stated ways, takes its
babble from the given split only; train.evaluate --condition both reports clean and classroom side by side;
a validation copy is exactly the evaluation's classroom condition."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import welch

from corpus import read_splits
from emotion_core.audio import SAMPLE_RATE, load_audio, prepare_speech
from emotion_core.features import DEFAULT_FEATURES, log_mel
from train import classroom, copies, rooms
from train.classroom import (
    PAD_S,
    BabblePool,
    clip_rng,
    opus_round_trip,
    set_level,
    simulate,
    simulate_scene,
)
from train.rooms import build_bank

from .shared_paths import CHECKPOINTS, WHISPER_DIR
from .test_load_audio import speechlike

PAD = int(PAD_S * SAMPLE_RATE)


def tone(hz: float, seconds: float = 3.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.fixture(scope="module")
def bank():
    return build_bank(n_rooms=2)  # two image-source rooms: a few seconds


@pytest.fixture(scope="module")
def pool():
    return BabblePool(
        "val", ["A", "B", "C"], [speechlike(SAMPLE_RATE, 2.0, f0=f, seed=i) for i, f in enumerate((110, 200, 260))]
    )


@pytest.fixture(scope="module")
def speech():
    quiet = np.zeros(int(0.3 * SAMPLE_RATE), np.float32)
    return np.concatenate([quiet, speechlike(SAMPLE_RATE, 2.0, f0=150, seed=9), quiet])


def test_same_seed_same_clip_other_copy_other_clip(speech, bank, pool):
    a = simulate(speech, clip_rng("RAVDESS/Actor_03/x.wav", 0), bank, pool)
    b = simulate(speech, clip_rng("RAVDESS/Actor_03/x.wav", 0), bank, pool)
    c = simulate(speech, clip_rng("RAVDESS/Actor_03/x.wav", 1), bank, pool)
    np.testing.assert_array_equal(a, b)
    assert a.shape == c.shape and not np.allclose(a, c)


@pytest.mark.slow
@pytest.mark.parametrize("copy", range(8))
def test_simulation_changes_the_audio_as_stated(speech, bank, pool, copy):
    out, scene, parts = simulate_scene(speech, clip_rng("clip", copy), bank, pool)
    # half a second of room noise before and after the speech; float32 at 16 kHz
    assert out.dtype == np.float32 and out.shape == (len(speech) + 2 * PAD,)
    lead = out[: PAD - int(0.05 * SAMPLE_RATE)]  # before the first direct sound reaches the microphone
    s0, s1 = parts["active"]
    assert np.sqrt(np.mean(lead**2)) > 1e-4, "the clip must start in room noise, not digital silence"
    assert np.mean(lead**2) < np.mean(out[s0:s1] ** 2)
    # noise at 5-20 dB SNR against the reverberant speech
    snr = 10 * np.log10(np.mean(parts["speech"][s0:s1] ** 2) / np.mean(parts["noise"] ** 2))
    assert classroom.SNR_DB[0] - 0.01 <= snr <= classroom.SNR_DB[1] + 0.01
    assert snr == pytest.approx(scene.snr_db, abs=0.01)
    # level: peak within -30..-3 dBFS (the codec moves it by a little), or driven into clipping
    peak_db = 20 * np.log10(np.abs(out).max())
    if scene.clipped:
        assert peak_db > -1.5
    else:
        assert classroom.PEAK_DBFS[0] - 1.5 <= peak_db <= classroom.PEAK_DBFS[1] + 1.5
        assert peak_db == pytest.approx(scene.peak_dbfs, abs=1.5)
    # a laptop microphone's band: little energy below 100 Hz and above 7.5 kHz
    f, psd = welch(out, SAMPLE_RATE, nperseg=2048)
    assert psd[f < 100].sum() / psd.sum() < 0.01
    assert psd[f > 7500].sum() / psd.sum() < 0.01
    f_in, psd_in = welch(speech, SAMPLE_RATE, nperseg=2048)
    high_in = psd_in[f_in > 7500].sum() / psd_in.sum()
    if high_in > 1e-3:  # an input with energy up there lost most of it (a voice without any proves nothing here)
        assert high_in > 3 * psd[f > 7500].sum() / psd.sum()
    assert 0.3 <= scene.distance_m <= 1.2 and 0.3 <= scene.rt60_s <= 0.9


def test_some_clips_are_clipped(speech, bank, pool, monkeypatch):
    y = set_level(speech, 4.0, clip=True)
    assert np.abs(y).max() == pytest.approx(1.0) and np.mean(np.abs(y) >= 0.999) > 0.001
    monkeypatch.setattr(classroom, "CLIP_SHARE", 1.0)
    out, scene, _ = simulate_scene(speech, clip_rng("clip", 0), bank, pool)
    assert scene.clipped and 20 * np.log10(np.abs(out).max()) > -1.5


def test_opus_round_trip_keeps_length_and_timing():
    x = speechlike(SAMPLE_RATE, 1.7, seed=3) * 0.5
    y = opus_round_trip(x, 24_000)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.corrcoef(x, y)[0, 1] > 0.7  # aligned: the codec's pre-skip is removed
    assert not np.allclose(x, y, atol=1e-3)  # and lossy


def test_babble_comes_from_the_pool_without_the_speaker(speech, bank, monkeypatch):
    """Talkers are pure tones here: the noise of a clip of speaker A holds B's tone and never A's."""
    monkeypatch.setattr(classroom, "NOISE_KINDS", ("babble",))
    tones = BabblePool("val", ["A", "B"], [tone(1000.0), tone(2500.0)])
    _, scene, parts = simulate_scene(speech, clip_rng("clip", 0), bank, tones, exclude_speaker="A")
    f, psd = welch(parts["noise"], SAMPLE_RATE, nperseg=4096)

    def at(hz):
        return psd[np.abs(f - hz) < 30].sum()

    assert scene.noise == "babble" and scene.talkers >= 3
    assert at(2500) > 1e4 * at(1000)


# --- a tiny synthetic corpus in RAVDESS's layout -----------------------------------------------------
EMOTIONS = {"05": "angry", "04": "sad", "03": "happy"}


def speakers_of(split: str, n: int) -> list[int]:
    splits = read_splits()
    return sorted(int(s.split("_")[1]) for s, p in splits.items() if s.startswith("RAVDESS_") and p == split)[:n]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, bank):
    """Synthetic RAVDESS clips of 2 train, 2 val and 1 test speakers, and a cache dir holding the bank."""
    root = tmp_path_factory.mktemp("corpus")
    for split, n in (("train", 2), ("val", 2), ("test", 1)):
        for actor in speakers_of(split, n):
            d = root / "RAVDESS" / f"Actor_{actor:02d}"
            d.mkdir(parents=True)
            for i, (code, _) in enumerate(EMOTIONS.items()):
                audio = speechlike(SAMPLE_RATE, 1.5 + 0.2 * i, f0=100 + 12 * actor + 30 * i, seed=actor * 10 + i)
                sf.write(d / f"03-01-{code}-01-01-01-{actor:02d}.wav", audio, SAMPLE_RATE)
    cache = tmp_path_factory.mktemp("cache")
    bank.save(cache / rooms.BANK_FILE)
    return root, cache


def test_the_babble_pool_holds_only_the_evaluated_split(corpus):
    from corpus import select_clips
    from train.evaluate import classroom_condition

    root, cache = corpus
    splits = read_splits()
    for split in ("train", "val", "test"):
        clips = select_clips(root, split)
        cond = classroom_condition(root, clips, split, False, str(cache))
        assert cond.pool.speakers and {splits[s] for s in cond.pool.speakers} == {split}
    guard = classroom_condition(root, [], None, True, str(cache))  # the guard set draws on the test speakers
    assert {splits[s] for s in guard.pool.speakers} == {"test"}


def test_a_validation_copy_is_the_evaluated_classroom_clip(corpus):
    from corpus import select_clips
    from train.cache import build_mels, load_cache
    from train.evaluate import classroom_condition

    root, cache = corpus
    build_mels(root, cache)
    copies.build_copies(root, cache, "val", [0])
    copies.build_copies(root, cache, "train", [0, 1])
    all_rows, _ = load_cache(cache)
    rows, mels = copies.load_copy(cache, "val", 0)
    assert [r["row"] for r in rows] == [i for i, r in enumerate(all_rows) if r["split"] == "val"]
    clips = select_clips(root, "val")
    cond = classroom_condition(root, clips, "val", False, str(cache))
    clip = next(c for c in clips if c.path.endswith(rows[1]["path"]))
    expected = log_mel(torch.from_numpy(prepare_speech(cond(clip, load_audio(clip.path)))), DEFAULT_FEATURES).T.numpy()
    got = np.asarray(mels[rows[1]["offset"] : rows[1]["offset"] + rows[1]["frames"]], dtype=np.float32)
    np.testing.assert_allclose(got, expected.astype(np.float16).astype(np.float32), atol=1e-2)
    # training copies: every training row, each copy its own simulation (and speed)
    t0, m0 = copies.load_copy(cache, "train", 0)
    t1, m1 = copies.load_copy(cache, "train", 1)
    assert (
        [r["row"] for r in t0] == [r["row"] for r in t1] == [i for i, r in enumerate(all_rows) if r["split"] == "train"]
    )
    assert m0.shape[1] == 80 and not np.array_equal(
        np.asarray(m0[: t0[0]["frames"]]), np.asarray(m1[: t1[0]["frames"]])
    )


@pytest.mark.slow
def test_evaluate_every_condition_side_by_side(corpus, tmp_path):
    from train.evaluate import main

    root, cache = corpus
    out = tmp_path / "eval.json"
    whisper = ["--whisper", str(WHISPER_DIR)] if WHISPER_DIR.is_dir() else []
    assert (
        main(
            [
                "--data",
                str(root),
                "--split",
                "val",
                "--out",
                str(out),
                "--condition",
                "all",
                "--cache",
                str(cache),
                "--checkpoints",
                str(CHECKPOINTS),
                *whisper,
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["condition"] == "all"
    assert list(result["conditions"]) == ["clean", "classroom", "young", "young+classroom"]
    assert result["models"] == result["conditions"]["clean"]["models"]  # the old readers see the clean results
    n = 2 * len(EMOTIONS)
    for cond, c in result["conditions"].items():
        assert {"cnn1d", "lstm", "cnn2d"} <= set(c["models"])
        for name, m in c["models"].items():
            assert set(m) == {"overall", "per_dataset", "confusion", "no_answer", "per_sex"} and m["overall"]["n"] == n
            assert sum(g["overall"]["n"] for g in m["per_sex"].values()) == n  # every clip in one sex's group
            shares = result["answer_shares"][cond][name]
            assert sum(shares.values()) == pytest.approx(1.0)
            assert [shares[lab] for lab in result["labels"]] == pytest.approx(np.array(m["confusion"]).sum(0) / n)
    assert result["true_shares"]["angry"] == pytest.approx(1 / 3) and result["true_shares"]["disgust"] == 0
    md = out.with_suffix(".md").read_text()
    assert "cb-UAR clean | cb-UAR classroom | cb-UAR young | cb-UAR young+classroom" in md
    assert "## Condition: classroom" in md and "## Condition: young+classroom" in md and "largest share" in md
    assert out.with_suffix(".png").stat().st_size > 1000
    # the classroom answers differ from the clean ones somewhere (the simulation reached the models)
    assert any(
        result["conditions"]["clean"]["models"][k]["confusion"]
        != result["conditions"]["classroom"]["models"][k]["confusion"]
        for k in result["models"]
    )


def test_evaluate_refuses_classroom_without_a_bank(corpus, tmp_path, capsys):
    from train.evaluate import main

    root, _ = corpus
    assert (
        main(
            [
                "--data",
                str(root),
                "--split",
                "val",
                "--out",
                str(tmp_path / "x.json"),
                "--condition",
                "classroom",
                "--cache",
                str(tmp_path / "empty"),
                "--checkpoints",
                str(CHECKPOINTS),
            ]
        )
        == 2
    )
    assert "python -m train.rooms --build-bank" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "x.json")
