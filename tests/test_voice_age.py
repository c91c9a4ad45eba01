"""train.voice_age: a young voice has the F0 and formants its age band gives (measured with Praat on the
output), keeps every clip's pitch relative to the speaker's other clips, and is one voice per speaker."""

from __future__ import annotations

import numpy as np
import pytest

from emotion_core.audio import SAMPLE_RATE, load_audio
from train.voice_age import (
    AGE_BANDS,
    AGES_YEARS,
    FORMANT_CEILING_HZ,
    ChainCondition,
    YoungCondition,
    YoungVoice,
    band_for,
    draw_voice,
    make_young,
    mean_formants_hz,
    median_f0,
    praat_seed,
    speaker_voices,
)

from .shared_paths import DATA_DIR, needs_corpus

# Peterson & Barney (1952), /a/ of an adult man and of an adult woman: F1-F5 in Hz
MAN_A = (730.0, 1090.0, 2440.0, 3400.0, 4300.0)
WOMAN_A = (850.0, 1220.0, 2810.0, 3900.0, 4800.0)


def vowel(f0_hz: float, formants_hz, seconds: float = 1.5) -> np.ndarray:
    """A sustained vowel synthesised with Praat: glottal pulses with a falling F0 contour (1.1 -> 1.0 -> 0.9
    times f0_hz) through a formant grid. -> (n,) float32 16 kHz, peak 0.5."""
    from parselmouth.praat import call

    contour = call("Create PitchTier", "f0", 0, seconds)
    for t, k in ((0.0, 1.1), (seconds / 2, 1.0), (seconds, 0.9)):
        call(contour, "Add point", t, f0_hz * k)
    source = call(call(contour, "To PointProcess"), "To Sound (phonation)", SAMPLE_RATE, 1.0, 0.05, 0.7, 0.03, 3.0, 4.0)
    grid = call("Create FormantGrid", "vowel", 0, seconds, len(formants_hz), 500, 1000, 60, 20)
    for i, f in enumerate(formants_hz, 1):
        call(grid, "Remove formant points between", i, 0, seconds)
        call(grid, "Add formant point", i, seconds / 2, f)
        call(grid, "Remove bandwidth points between", i, 0, seconds)
        call(grid, "Add bandwidth point", i, seconds / 2, 60 + 20 * i)
    x = call([source, grid], "Filter").values[0]
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def test_the_bands_cover_every_pupil_and_stay_within_the_sources():
    for sex in ("female", "male"):
        for age in range(AGES_YEARS[0], AGES_YEARS[1] + 1):
            b = band_for(sex, age)
            # children's and teenagers' calm F0 (Lee et al. 1999; Hillenbrand et al. 1995; Peterson & Barney 1952)
            assert 120 <= b.f0_hz[0] < b.f0_hz[1] <= 320
            # formants up to 40% above an adult of the same sex, never below
            assert 1.0 < b.formant_ratio[0] < b.formant_ratio[1] <= 1.40
    children = [b for b in AGE_BANDS if b.ages_years[1] <= 11]
    assert {b.sex for b in children} == {"female", "male"}
    for b in children:  # the "median F0 around 230-300 Hz" for children
        assert b.f0_hz == (230.0, 300.0)
    # a boy's vocal tract is further from an adult man's than a girl's from an adult woman's
    assert band_for("male", 9).formant_ratio[0] > band_for("female", 9).formant_ratio[1]


def test_one_voice_per_speaker_drawn_from_its_band():
    voices = [draw_voice(f"SPK_{i}", "male" if i % 2 else "female", 120.0 if i % 2 else 210.0) for i in range(200)]
    for v in voices:
        b = band_for(v.sex, v.age_years)
        assert b.f0_hz[0] <= v.target_f0_hz <= b.f0_hz[1]
        assert b.formant_ratio[0] <= v.formant_ratio <= b.formant_ratio[1]
    assert {v.age_years for v in voices} == set(range(AGES_YEARS[0], AGES_YEARS[1] + 1))
    assert draw_voice("SPK_3", "male", 120.0) == voices[3]  # the same speaker always gets the same voice
    assert draw_voice("SPK_3", "male", 120.0, copy=1) != voices[3]  # another copy draws another voice


@pytest.mark.parametrize("adult, f0_hz, formants", [("male", 120.0, MAN_A), ("female", 210.0, WOMAN_A)])
@pytest.mark.parametrize("age", [9, 13, 15])
def test_the_output_has_the_bands_f0_and_formants(adult, f0_hz, formants, age):
    """Measured with Praat on the output: median F0 at the drawn target and inside the band; every formant
    raised by the drawn ratio."""
    x = vowel(f0_hz, formants)
    band = band_for(adult, age)
    voice = YoungVoice("spk", adult, age, median_f0(x), float(np.mean(band.f0_hz)), float(np.mean(band.formant_ratio)))
    y = make_young(x, voice)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.abs(y).max() == pytest.approx(np.abs(x).max(), rel=1e-3)
    f0 = median_f0(y)
    assert f0 == pytest.approx(voice.target_f0_hz, rel=0.03)
    assert band.f0_hz[0] <= f0 <= band.f0_hz[1]
    before = np.array(mean_formants_hz(x, FORMANT_CEILING_HZ[adult]))
    after = np.array(mean_formants_hz(y, FORMANT_CEILING_HZ[adult] * voice.formant_ratio))
    np.testing.assert_allclose(after / before, voice.formant_ratio, atol=0.05)
    assert np.all(after / before >= band.formant_ratio[0] - 0.05) and np.all(
        after / before <= band.formant_ratio[1] + 0.05
    )


def test_a_clip_keeps_its_pitch_relative_to_the_speakers_other_clips():
    """A calm and an excited clip of one speaker: the excited one stays as far above the calm one, and its
    contour keeps its shape (no clip is set to a fixed pitch)."""
    voice = YoungVoice("spk", "male", 10, 120.0, 260.0, 1.3)
    calm, excited = vowel(120.0, MAN_A), vowel(170.0, MAN_A)
    young_calm, young_excited = make_young(calm, voice), make_young(excited, voice)
    assert median_f0(young_excited) / median_f0(young_calm) == pytest.approx(170 / 120, rel=0.03)
    assert median_f0(young_calm) == pytest.approx(260.0, rel=0.03)

    def contour(a):
        import parselmouth

        p = parselmouth.Sound(a.astype(np.float64), sampling_frequency=SAMPLE_RATE).to_pitch(0.05, 75, 600)
        return np.array([p.get_value_at_time(t) for t in (0.3, 0.75, 1.2)])

    np.testing.assert_allclose(contour(young_excited) / contour(excited), voice.pitch_factor, rtol=0.04)


def test_unvoiced_sound_keeps_its_length_and_level():
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(SAMPLE_RATE)).astype(np.float32)
    y = make_young(noise, YoungVoice("spk", "female", 10, 210.0, 260.0, 1.15))
    assert y.shape == noise.shape and np.isfinite(y).all()
    assert np.abs(y).max() == pytest.approx(np.abs(noise).max(), rel=1e-3)


def test_the_same_clip_always_becomes_the_same_young_voice():
    """Praat's PSOLA draws random numbers; seeded from the clip and the voice, a clip's young copy is the same on
    every call (so two evaluations of one checkpoint give one figure), and another clip is not seeded alike."""
    rng = np.random.default_rng(1)
    speech = vowel(130.0, MAN_A)
    speech = speech + (0.02 * rng.standard_normal(len(speech))).astype(np.float32)
    voice = YoungVoice("spk", "male", 11, 130.0, 250.0, 1.3)
    first, second = make_young(speech, voice), make_young(speech, voice)
    np.testing.assert_array_equal(first, second)
    assert praat_seed(speech, voice) != praat_seed(speech[1:], voice)
    assert praat_seed(speech, voice) != praat_seed(speech, YoungVoice("spk", "male", 11, 130.0, 250.0, 1.25))


def test_conditions_chain_in_order():
    calls = []
    chain = ChainCondition(lambda c, a: calls.append("young") or a * 2, lambda c, a: calls.append("room") or a + 1)
    assert chain(None, np.ones(3, np.float32)).tolist() == [3.0, 3.0, 3.0] and calls == ["young", "room"]


@needs_corpus
def test_corpus_speakers_become_pupils():
    """Real actors (a man and a woman): each speaker's calm clips land in their young voice's band and their
    angry clips stay as far above their calm ones as they were."""
    from corpus import scan

    speakers = ("RAVDESS_01", "RAVDESS_02")
    clips = [c for c in scan(DATA_DIR / "RAVDESS")[0] if c.speaker in speakers]
    condition = YoungCondition.from_clips(clips)
    voices = speaker_voices(clips)
    assert condition.voices == voices and {v.sex for v in voices.values()} == {"male", "female"}
    for spk in speakers:
        v = voices[spk]
        band = band_for(v.sex, v.age_years)
        f0 = {}
        for label in ("neutral", "angry"):
            own = sorted((c for c in clips if c.speaker == spk and c.label == label), key=lambda c: c.path)[:4]
            before = [median_f0(load_audio(c.path)) for c in own]
            after = [median_f0(condition(c, load_audio(c.path))) for c in own]
            f0[label] = (np.median(before), np.median(after))
        assert band.f0_hz[0] * 0.9 <= f0["neutral"][1] <= band.f0_hz[1] * 1.1
        assert f0["angry"][1] / f0["neutral"][1] == pytest.approx(f0["angry"][0] / f0["neutral"][0], rel=0.06)
