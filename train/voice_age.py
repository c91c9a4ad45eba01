"""A pupil's voice: an adult actor's speech made the size of a child's or a teenager's, one speaker at a time.

    python -m train.voice_age --examples DIR       # listenable before/after pairs and their measured F0/formants
    python -m train.copies --condition young ...   # young copies of the training and validation clips

The people who use the app are 8 to 16 years old; every training voice is an adult actor. A young voice
differs from an adult's in two ways this module changes, and in nothing else:
- a shorter vocal tract: every formant frequency higher by one factor (`formant_ratio`);
- a higher voice: the fundamental frequency (F0) higher by one factor (`pitch_factor`).

Each speaker is given ONE young voice (`draw_voice`: an age and the speaker's own sex, seeded by the speaker's
name), and every clip of that speaker goes through the same two factors. So an angry clip stays as much above
the speaker's neutral clips as it was, and every contour keeps its shape: no clip is ever set to a fixed pitch.
The pitch factor takes the speaker's own calm voice (the median F0 of their neutral clips) to the F0 drawn for
the young voice; the formant ratio is drawn relative to an adult of the same sex.

The signal work is Praat's "Change gender" (through praat-parselmouth): the sound is resampled to shift every
formant by the ratio, then PSOLA puts the pitch at the clip's own median times the pitch factor, with the
contour's range unchanged.

The ranges (AGE_BANDS) come from these measurements of children's, teenagers' and adults' voices:
- Lee, Potamianos & Narayanan (1999), "Acoustics of children's speech: developmental changes of temporal and
  spectral parameters", J. Acoust. Soc. Am. 105(3), 1455-1468 (436 speakers aged 5-18 and adults): F0 about
  230-270 Hz for both sexes up to 12; boys' F0 falls from 13 and reaches about 130 Hz by 15-16, girls' settles
  near 210-230 Hz; formants fall with age and reach adult values at about 15 (boys) and 14 (girls); the formant
  frequencies of 8-11-year-olds are 25-40% above adult men's and 10-20% above adult women's.
- Hillenbrand, Getty, Clark & Wheeler (1995), "Acoustic characteristics of American English vowels",
  J. Acoust. Soc. Am. 97(5), 3099-3111: mean F0 131 Hz (men), 220 Hz (women), 237 Hz (children aged 10-12);
  children's F1-F3 about 10-15% above women's and 25-35% above men's.
- Peterson & Barney (1952), "Control methods used in a study of the vowels", J. Acoust. Soc. Am. 24(2),
  175-184: mean F0 132 Hz (men), 223 Hz (women), 264 Hz (children).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emotion_core.audio import SAMPLE_RATE, AudioError, load_audio

# --- the ranges (sources in the module docstring) ---------------------------------------------------------
AGES_YEARS = (8, 16)  # the pupils, inclusive


@dataclass(frozen=True)
class AgeBand:
    """Young speakers of one sex and age range: their calm speaking F0 and their formants over an adult's."""

    sex: str  # "female" or "male"
    ages_years: tuple[int, int]  # inclusive
    f0_hz: tuple[float, float]  # median F0 of calm speech
    formant_ratio: tuple[float, float]  # formant frequencies / those of an adult of the same sex


AGE_BANDS = (
    AgeBand("female", (8, 11), (230.0, 300.0), (1.10, 1.22)),
    AgeBand("female", (12, 16), (205.0, 260.0), (1.03, 1.12)),
    AgeBand("male", (8, 11), (230.0, 300.0), (1.25, 1.40)),
    AgeBand("male", (12, 13), (200.0, 270.0), (1.15, 1.30)),  # before the voice breaks
    AgeBand("male", (14, 16), (130.0, 200.0), (1.03, 1.15)),  # during and after
)

# Praat's pitch analysis of the adult speech (emotional speech reaches high)
PITCH_FLOOR_HZ, PITCH_CEILING_HZ = 75.0, 600.0
REFERENCE_CLIPS = 8  # neutral clips per speaker whose median F0 is the speaker's calm voice
ADULT_F0_HZ = {"male": 120.0, "female": 210.0}  # the speaker's calm F0 when none of their clips is voiced
SEX_F0_SPLIT_HZ = 165.0  # a speaker of unknown sex is taken as male below this calm F0


def band_for(sex: str, age: int) -> AgeBand:
    for b in AGE_BANDS:
        if b.sex == sex and b.ages_years[0] <= age <= b.ages_years[1]:
            return b
    raise ValueError(f"no age band for a {age}-year-old {sex} speaker")


@dataclass(frozen=True)
class YoungVoice:
    """One speaker's young voice: the two factors every one of their clips goes through."""

    speaker: str
    sex: str
    age_years: int
    calm_f0_hz: float  # the adult speaker's calm voice (median F0 of their neutral clips)
    target_f0_hz: float  # the young voice's calm F0
    formant_ratio: float

    @property
    def pitch_factor(self) -> float:
        return self.target_f0_hz / self.calm_f0_hz


def speaker_rng(speaker: str, copy: int = 0) -> np.random.Generator:
    """The Generator of one speaker's young voice (copy k draws another voice): from sha256 of the name."""
    digest = hashlib.sha256(f"voice-age|{speaker}|{copy}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def draw_voice(speaker: str, sex: str, calm_f0_hz: float, copy: int = 0) -> YoungVoice:
    """A pupil of the speaker's own sex, aged uniformly in AGES_YEARS, with F0 and formant ratio drawn
    uniformly in the age band's ranges."""
    rng = speaker_rng(speaker, copy)
    age = int(rng.integers(AGES_YEARS[0], AGES_YEARS[1] + 1))
    band = band_for(sex, age)
    return YoungVoice(
        speaker, sex, age, float(calm_f0_hz), float(rng.uniform(*band.f0_hz)), float(rng.uniform(*band.formant_ratio))
    )


# --- Praat ---------------------------------------------------------------------------------------------------
def _sound(audio16k: np.ndarray):
    import parselmouth

    return parselmouth.Sound(np.asarray(audio16k, dtype=np.float64), sampling_frequency=SAMPLE_RATE)


def median_f0(audio16k: np.ndarray) -> float:
    """(n,) 16 kHz -> median F0 in Hz of the voiced frames, as Praat's "Change gender" measures it
    (To Pitch with a 0.8 / floor step); nan when no frame is voiced."""
    from parselmouth.praat import call

    pitch = _sound(audio16k).to_pitch(
        time_step=0.8 / PITCH_FLOOR_HZ, pitch_floor=PITCH_FLOOR_HZ, pitch_ceiling=PITCH_CEILING_HZ
    )
    f0 = call(pitch, "Get quantile", 0.0, 0.0, 0.5, "Hertz")
    return float(f0) if f0 == f0 else float("nan")


_PRAAT_RANDOM = threading.Lock()  # Praat's random generator is one per process: seeding and use go together


def praat_seed(audio16k: np.ndarray, voice: YoungVoice) -> int:
    """The seed of Praat's random generator for one clip's young voice, from the clip and the voice: PSOLA draws
    random numbers for the unvoiced stretches, so without it the same clip came out different each time (and the
    young test figures moved between two evaluations of the same checkpoints)."""
    digest = hashlib.sha256(np.ascontiguousarray(audio16k, dtype=np.float32).tobytes() + repr(voice).encode())
    return int.from_bytes(digest.digest()[:6], "little")


def make_young(audio16k: np.ndarray, voice: YoungVoice) -> np.ndarray:
    """(n,) float32 16 kHz -> (n,) float32 16 kHz: formants times voice.formant_ratio, F0 (level and
    contour) times voice.pitch_factor, same peak level. A clip with no voiced frame keeps its pitch."""
    from parselmouth.praat import call, run

    clip_f0 = median_f0(audio16k)
    new_median = clip_f0 * voice.pitch_factor if np.isfinite(clip_f0) else 0.0  # 0: Praat leaves the pitch
    with _PRAAT_RANDOM:
        run(f"random_initializeWithSeedUnsafelyButPredictably ({praat_seed(audio16k, voice)})")
        out = call(
            _sound(audio16k),
            "Change gender",
            PITCH_FLOOR_HZ,
            PITCH_CEILING_HZ,
            voice.formant_ratio,
            new_median,
            1.0,
            1.0,
        )
    y = out.values[0].astype(np.float32)
    y = np.pad(y, (0, max(0, len(audio16k) - len(y))))[: len(audio16k)]
    peak_in, peak_out = float(np.abs(audio16k).max()), float(np.abs(y).max())
    return (y * (peak_in / peak_out) if peak_out > 0 else y).astype(np.float32)


# --- speakers -------------------------------------------------------------------------------------------------
def speaker_sexes() -> dict[str, str]:
    """speaker -> "female" | "male" from corpus/splits.csv (made from the corpus manifest)."""
    from corpus import SPLITS_CSV

    with open(SPLITS_CSV, newline="") as f:
        return {r["speaker"]: r["sex"] for r in csv.DictReader(f) if r.get("sex") in ("female", "male")}


def calm_f0(clips) -> float:
    """The speaker's calm voice: the median over up to REFERENCE_CLIPS of their neutral clips (else any of
    their clips, sorted by path) of each clip's median F0. nan when none is voiced."""
    neutral = sorted((c for c in clips if c.label == "neutral"), key=lambda c: c.path) or sorted(
        clips, key=lambda c: c.path
    )
    f0s = []
    for c in neutral[:REFERENCE_CLIPS]:
        try:
            f0s.append(median_f0(load_audio(c.path)))
        except AudioError:
            continue
    f0s = [f for f in f0s if np.isfinite(f)]
    return float(np.median(f0s)) if f0s else float("nan")


def speaker_voices(clips, copy: int = 0) -> dict[str, YoungVoice]:
    """clips (with .path, .speaker, .label) -> speaker -> their young voice. Sex from corpus/splits.csv, else
    corpus.splits.speaker_sex, else the calm F0 (below SEX_F0_SPLIT_HZ: male)."""
    from corpus.splits import speaker_sex

    known = speaker_sexes()
    by_speaker: dict[str, list] = {}
    for c in clips:
        by_speaker.setdefault(c.speaker, []).append(c)
    voices = {}
    for spk, own in sorted(by_speaker.items()):
        f0 = calm_f0(own)
        sex = known.get(spk) or speaker_sex(spk, {})
        if sex not in ADULT_F0_HZ:
            sex = "male" if np.isfinite(f0) and f0 < SEX_F0_SPLIT_HZ else "female"
        voices[spk] = draw_voice(spk, sex, f0 if np.isfinite(f0) else ADULT_F0_HZ[sex], copy)
    return voices


class YoungCondition:
    """The evaluation condition "young": clip -> the clip in its speaker's young voice (copy 0)."""

    def __init__(self, voices: dict[str, YoungVoice]):
        self.voices = voices

    @classmethod
    def from_clips(cls, clips, copy: int = 0) -> YoungCondition:
        return cls(speaker_voices(clips, copy))

    def __call__(self, clip, audio16k: np.ndarray) -> np.ndarray:
        return make_young(audio16k, self.voices[clip.speaker])


class ChainCondition:
    """Conditions applied one after the other (young, then classroom: a pupil's voice in a classroom)."""

    def __init__(self, *steps):
        self.steps = steps

    def __call__(self, clip, audio16k: np.ndarray) -> np.ndarray:
        for step in self.steps:
            audio16k = step(clip, audio16k)
        return audio16k


# --- measuring voices (the examples and the tests) ----------------------------------------------------------
def mean_formants_hz(audio16k: np.ndarray, ceiling_hz: float) -> tuple[float, float, float]:
    """Mean F1, F2, F3 (Hz) over the voiced frames, Praat's Burg tracker with five formants below ceiling_hz
    (Praat's advice: 5000 Hz for men, 5500 for women, higher for children)."""
    from parselmouth.praat import call

    snd = _sound(audio16k)
    pitch = snd.to_pitch(time_step=0.01, pitch_floor=PITCH_FLOOR_HZ, pitch_ceiling=PITCH_CEILING_HZ)
    formant = snd.to_formant_burg(time_step=0.01, max_number_of_formants=5, maximum_formant=ceiling_hz)
    voiced = [t for t in pitch.xs() if pitch.get_value_at_time(t) == pitch.get_value_at_time(t)]
    out = []
    for i in (1, 2, 3):
        vals = [call(formant, "Get value at time", i, t, "hertz", "Linear") for t in voiced]
        vals = [v for v in vals if v == v]
        out.append(float(np.mean(vals)) if vals else float("nan"))
    return tuple(out)


FORMANT_CEILING_HZ = {"male": 5000.0, "female": 5500.0}


def write_examples(root: Path, out: Path, per_dataset: int = 2, split: str = "test") -> Path:
    """Before/after WAV pairs of one clip per speaker for per_dataset speakers of each shareable dataset
    (RAVDESS, CREMA-D) of `split`, and out/README.md: each voice and its measured F0 and formants."""
    import soundfile as sf

    from corpus import read_splits, scan

    assignment = read_splits()
    clips = [c for c in scan(root)[0] if assignment.get(c.speaker) == split and c.dataset in ("RAVDESS", "CREMA-D")]
    speakers = []
    for ds in ("RAVDESS", "CREMA-D"):
        speakers += sorted({c.speaker for c in clips if c.dataset == ds})[:per_dataset]
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Young voices: before and after",
        "",
        "Written by `python -m train.voice_age --examples DIR`. F0: median over voiced frames (Praat); "
        "formants: mean F1/F2/F3 over voiced frames (Praat Burg), ceiling scaled with the voice.",
        "",
        "| clip | speaker | sex | young voice | pitch factor | formant ratio | F0 before -> after (Hz) | "
        "F1/F2/F3 before (Hz) | F1/F2/F3 after (Hz) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for spk in speakers:
        own = [c for c in clips if c.speaker == spk]
        voice = speaker_voices(own)[spk]
        for label in ("neutral", "angry"):
            clip = sorted((c for c in own if c.label == label), key=lambda c: c.path)[0]
            audio = load_audio(clip.path)
            young = make_young(audio, voice)
            stem = f"{Path(clip.path).stem}"
            sf.write(out / f"{stem}_adult.wav", audio, SAMPLE_RATE)
            sf.write(out / f"{stem}_young.wav", young, SAMPLE_RATE)
            ceiling = FORMANT_CEILING_HZ[voice.sex]
            before = mean_formants_hz(audio, ceiling)
            after = mean_formants_hz(young, ceiling * voice.formant_ratio)
            lines.append(
                f"| {stem} ({label}) | {spk} | {voice.sex} | {voice.age_years} years, calm F0 "
                f"{voice.target_f0_hz:.0f} Hz | {voice.pitch_factor:.2f} | {voice.formant_ratio:.2f} | "
                f"{median_f0(audio):.0f} -> {median_f0(young):.0f} | "
                + " / ".join(f"{f:.0f}" for f in before)
                + " | "
                + " / ".join(f"{f:.0f}" for f in after)
                + " |"
            )
    readme = out / "README.md"
    readme.write_text("\n".join(lines) + "\n")
    return readme


def main(argv=None) -> int:
    from emotion_core.paths import data_dir

    ap = argparse.ArgumentParser(description="Young voices: before/after examples of the voice-age simulation.")
    ap.add_argument("--data", help="datasets directory (default $EMOTION_DATA_DIR or ./data)")
    ap.add_argument("--examples", required=True, help="directory to write the WAV pairs and README.md into")
    ap.add_argument("--per-dataset", type=int, default=2, help="speakers of RAVDESS and of CREMA-D")
    args = ap.parse_args(argv)
    print(f"wrote {write_examples(data_dir(args.data), Path(args.examples), args.per_dataset)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
