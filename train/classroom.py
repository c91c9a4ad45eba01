"""A pupil at a laptop in a classroom: a seeded, deterministic simulation of what the app hears.

    python -m train.rooms --build-bank                     # the room impulse-response bank (once; train/rooms.py)
    python -m train.copies --condition classroom --copies 1 --split train   # copies of the training clips

One simulated clip (`simulate`), in the order sound travels:
1. half a second of silence is put before and after the speech, so the clip starts and ends in room noise;
2. the room: the speech is convolved (FFT) with a room impulse response drawn from the bank of train.rooms
   (pyroomacoustics' image-source model, simulated once);
3. noise at SNR_DB against the reverberant speech's active part: classroom babble (BABBLE_TALKERS other
   speakers of the same split, each through the room from its own seat), HVAC-like coloured noise
   (colorednoise, 1/f^beta with beta in HVAC_BETA: pink to brown), or both;
4. a cheap microphone's band: Butterworth high-pass at MIC_HIGHPASS_HZ, low-pass at MIC_LOWPASS_HZ (scipy);
5. the level: peak at PEAK_DBFS; a share CLIP_SHARE of clips is driven CLIP_OVERDRIVE_DB past full scale
   and clipped;
6. the browser's codec: Opus (PyAV libopus, OPUS_BITRATE_BPS) at OPUS_RATE_HZ in a WebM container, as
   MediaRecorder sends it, decoded by the app's own `load_audio` back to 16 kHz.

Every random choice comes from the numpy Generator given to `simulate`; `clip_rng(key, copy)` makes it from
a hash of the clip's path relative to the data directory and a copy index, so evaluation is deterministic.
Babble only ever comes from clips of the split being simulated (`BabblePool`).

Training and validation copies of the cached clips are written by train.copies.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emotion_core.audio import (
    SAMPLE_RATE,
    AudioError,
    load_audio,
    prepare_speech,
    resample,
    speech_bounds,
)

from .rooms import BANK_SEED, RirBank, uniform

# --- the classroom (units in the names) -----------------------------------------------------------

SNR_DB = (5.0, 20.0)  # speech (reverberant, active part) to noise
NOISE_KINDS = ("babble", "hvac", "both")  # drawn with equal chances
BABBLE_TALKERS = (3, 5)  # overlapping other talkers (inclusive)
BABBLE_TALKER_SPREAD_DB = 6.0  # each talker's level varies within +-half this
HVAC_BETA = (1.0, 2.0)  # spectral slope of the ventilation noise: 1 pink, 2 brown
HVAC_BELOW_BABBLE_DB = (0.0, 10.0)  # with "both": the HVAC noise this far below the babble
BABBLE_POOL_CLIPS = 240  # clips of the split that make up the babble

MIC_HIGHPASS_HZ, MIC_HIGHPASS_ORDER = 150.0, 4  # a laptop microphone's small capsule
MIC_LOWPASS_HZ, MIC_LOWPASS_ORDER = 7000.0, 8  # and its cheap converter

PEAK_DBFS = (-30.0, -3.0)  # recording level
CLIP_SHARE = 0.1  # of clips recorded too hot
CLIP_OVERDRIVE_DB = (1.0, 6.0)  # peak this far above full scale before clipping

PAD_S = 0.5  # s of room noise before and after the speech
OPUS_RATE_HZ = 48_000  # browsers capture and encode at 48 kHz
OPUS_BITRATE_BPS = (24_000, 32_000)

SPEED_FACTORS = np.round(np.arange(0.90, 1.1001, 0.01), 2)  # speed perturbation of training copies

EVAL_COPY = 0  # the copy index train.evaluate simulates (validation copy 0 is the same clips)


# --- seeding ----------------------------------------------------------------------------------------
def clip_rng(key: str, copy: int = 0) -> np.random.Generator:
    """The Generator of one simulated copy of one clip: from sha256 of its key (the clip's path relative to
    the data directory) and the copy index. Same key and copy -> same simulation, on any machine."""
    digest = hashlib.sha256(f"{key}|{copy}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


# --- the babble pool ----------------------------------------------------------------------------------
@dataclass
class BabblePool:
    """Prepared speech of other clips of ONE split: speakers (n,) and audio, a list of float32 (samples,)."""

    split: str | None
    speakers: list
    audio: list

    @classmethod
    def from_clips(cls, clips, split: str | None = None, n_clips: int = BABBLE_POOL_CLIPS, seed: int = BANK_SEED):
        """clips: objects with .path and .speaker, all of one split. A seeded sample of n_clips of them
        (sorted by path first, so the same clips give the same pool), each through load_audio -> prepare_speech."""
        clips = sorted(clips, key=lambda c: str(c.path))
        rng = np.random.default_rng(seed)
        pick = sorted(rng.choice(len(clips), size=min(n_clips, len(clips)), replace=False).tolist())
        speakers, audio = [], []
        for i in pick:
            try:
                a = prepare_speech(load_audio(clips[i].path))
            except AudioError:
                continue
            speakers.append(clips[i].speaker)
            audio.append(a)
        if not audio:
            raise ValueError(f"no usable clip for the babble pool of split {split}")
        return cls(split, speakers, audio)


def babble_talker(rng, pool: BabblePool, n_samples: int, exclude_speaker: str | None) -> np.ndarray:
    """One other talker: random pool clips end to end from a random point, (n_samples,) float32."""
    allowed = [i for i, s in enumerate(pool.speakers) if s != exclude_speaker] or list(range(len(pool.audio)))
    parts, total = [], 0
    while total < n_samples + SAMPLE_RATE:
        a = pool.audio[allowed[int(rng.integers(len(allowed)))]]
        parts.append(a)
        total += len(a)
    talk = np.concatenate(parts)
    start = int(rng.integers(0, len(talk) - n_samples + 1))
    return talk[start : start + n_samples]


# --- small signal steps -------------------------------------------------------------------------------
def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """(n,) dry sound -> (n,) the sound at the microphone (FFT convolution, cut to the input length)."""
    from scipy.signal import oaconvolve

    return oaconvolve(x, rir, mode="full")[: len(x)].astype(np.float32)


def hvac_noise(rng, n_samples: int) -> np.ndarray:
    """(n_samples,) ventilation-like 1/f^beta Gaussian noise (colorednoise), unit power."""
    import colorednoise

    x = colorednoise.powerlaw_psd_gaussian(uniform(rng, HVAC_BETA), n_samples, random_state=rng)
    return (x / np.sqrt(np.mean(x**2))).astype(np.float32)


def power(x: np.ndarray) -> float:
    return float(np.mean(np.asarray(x, dtype=np.float64) ** 2))


def microphone_band(x: np.ndarray) -> np.ndarray:
    """(n,) -> (n,) through the laptop microphone's band (Butterworth high- and low-pass, scipy)."""
    from scipy.signal import butter, sosfilt

    hp = butter(MIC_HIGHPASS_ORDER, MIC_HIGHPASS_HZ, "highpass", fs=SAMPLE_RATE, output="sos")
    lp = butter(MIC_LOWPASS_ORDER, MIC_LOWPASS_HZ, "lowpass", fs=SAMPLE_RATE, output="sos")
    return sosfilt(np.vstack([hp, lp]), x).astype(np.float32)


def set_level(x: np.ndarray, peak_dbfs: float, clip: bool) -> np.ndarray:
    """Scale (n,) so its peak is at peak_dbfs; with clip, the peak may exceed 0 dBFS and is clipped to +-1."""
    y = x * (10 ** (peak_dbfs / 20) / max(float(np.abs(x).max()), 1e-12))
    return np.clip(y, -1.0, 1.0).astype(np.float32) if clip else y.astype(np.float32)


def opus_round_trip(x: np.ndarray, bitrate_bps: int) -> np.ndarray:
    """(n,) 16 kHz -> the browser's path: 48 kHz, Opus in WebM (PyAV libopus), decoded by the app's
    load_audio back to 16 kHz; (n,) float32 (cut or zero-padded to the input length)."""
    import av

    x48 = resample(np.ascontiguousarray(x, dtype=np.float32), SAMPLE_RATE, OPUS_RATE_HZ)
    buf = io.BytesIO()
    with av.open(buf, "w", format="webm") as out:
        stream = out.add_stream("libopus", rate=OPUS_RATE_HZ, layout="mono")
        stream.bit_rate = int(bitrate_bps)
        frame = av.AudioFrame.from_ndarray(np.clip(x48, -1, 1)[None].astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = OPUS_RATE_HZ
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    y = load_audio(buf.getvalue())
    return np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)].astype(np.float32)


# --- the simulation -----------------------------------------------------------------------------------
@dataclass
class Scene:
    """The choices made for one simulated clip."""

    room: int
    position: int
    rt60_s: float
    distance_m: float
    noise: str
    snr_db: float
    talkers: int
    peak_dbfs: float
    clipped: bool
    bitrate_bps: int


def simulate_scene(
    audio: np.ndarray,
    rng: np.random.Generator,
    bank: RirBank,
    babble_pool: BabblePool,
    exclude_speaker: str | None = None,
):
    """audio: (n,) float32 16 kHz (from load_audio). -> (out (n + 2 * PAD_S * 16000,) float32 16 kHz,
    Scene, parts) where parts = {"speech": reverberant speech, "noise": the noise added (both at the
    microphone, before band, level and codec), "active": (start, end) samples of the speech in out}."""
    pad = int(PAD_S * SAMPLE_RATE)
    x = np.pad(np.asarray(audio, dtype=np.float32), (pad, pad))
    n = len(x)
    room, position = int(rng.integers(bank.n_rooms)), int(rng.integers(bank.index.shape[1]))
    speech = reverberate(x, bank.rir(room, position, 0))
    start, end = speech_bounds(audio)
    active = (start + pad, end + pad)
    speech_power = power(speech[active[0] : active[1]])

    kind = NOISE_KINDS[int(rng.integers(len(NOISE_KINDS)))]
    snr_db = uniform(rng, SNR_DB)
    talkers = 0
    noise = np.zeros(n, np.float32)
    if kind in ("babble", "both"):
        talkers = int(rng.integers(BABBLE_TALKERS[0], BABBLE_TALKERS[1] + 1))
        seats = rng.permutation(bank.index.shape[2] - 1)[:talkers] + 1
        for i in range(talkers):
            talk = babble_talker(rng, babble_pool, n, exclude_speaker)
            gain = 10 ** (rng.uniform(-0.5, 0.5) * BABBLE_TALKER_SPREAD_DB / 20)
            noise += gain * reverberate(talk, bank.rir(room, position, int(seats[i % len(seats)])))
    if kind in ("hvac", "both"):
        hvac = hvac_noise(rng, n)
        if kind == "both":
            hvac *= np.sqrt(power(noise) * 10 ** (-uniform(rng, HVAC_BELOW_BABBLE_DB) / 10))
        noise += hvac
    noise *= np.sqrt(speech_power / max(power(noise), 1e-20) / 10 ** (snr_db / 10))

    y = microphone_band(speech + noise)
    clipped = bool(rng.random() < CLIP_SHARE)
    peak_dbfs = uniform(rng, CLIP_OVERDRIVE_DB) if clipped else uniform(rng, PEAK_DBFS)
    y = set_level(y, peak_dbfs, clipped)
    bitrate = int(rng.integers(OPUS_BITRATE_BPS[0], OPUS_BITRATE_BPS[1] + 1))
    out = opus_round_trip(y, bitrate)
    scene = Scene(
        room,
        position,
        float(bank.rt60_s[room]),
        float(bank.distance_m[room, position]),
        kind,
        snr_db,
        talkers,
        peak_dbfs,
        clipped,
        bitrate,
    )
    return out, scene, {"speech": speech, "noise": noise, "active": active}


def simulate(
    audio16k: np.ndarray,
    rng: np.random.Generator,
    bank: RirBank,
    babble_pool: BabblePool,
    exclude_speaker: str | None = None,
) -> np.ndarray:
    """A pupil's clip as the app receives it in a classroom (see the module docstring).

    audio16k: (n,) float32 16 kHz mono from load_audio; rng: the clip's Generator (clip_rng); bank: RirBank;
    babble_pool: clips of the same split as the clip; exclude_speaker: keep this speaker out of the babble.
    -> (n + 2 * PAD_S * 16000,) float32 16 kHz."""
    return simulate_scene(audio16k, rng, bank, babble_pool, exclude_speaker)[0]


def speed_perturb(audio16k: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n,) -> (about n / factor,): played faster or slower by a factor from SPEED_FACTORS (torchaudio)."""
    import torch
    import torchaudio.functional as AF

    factor = float(SPEED_FACTORS[int(rng.integers(len(SPEED_FACTORS)))])
    if factor == 1.0:
        return audio16k
    y, _ = AF.speed(torch.from_numpy(np.ascontiguousarray(audio16k)), SAMPLE_RATE, factor)
    return y.numpy().astype(np.float32)


class ClassroomCondition:
    """The evaluation condition "classroom": clip -> its deterministic simulated copy (copy EVAL_COPY).

    root: the data directory (a clip's key is its path relative to root); bank; pool: the babble of the
    split being evaluated."""

    def __init__(self, root: Path, bank: RirBank, pool: BabblePool):
        self.root, self.bank, self.pool = Path(root), bank, pool

    def key(self, clip) -> str:
        return Path(os.path.relpath(Path(clip.path), self.root)).as_posix()

    def __call__(self, clip, audio16k: np.ndarray) -> np.ndarray:
        """clip: .path and .speaker; audio16k (n,) from load_audio -> (n + 2 * PAD_S * 16000,)."""
        return simulate(audio16k, clip_rng(self.key(clip), EVAL_COPY), self.bank, self.pool, clip.speaker)
