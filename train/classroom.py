"""A pupil at a laptop in a classroom: a seeded, deterministic simulation of what the app hears.

    python -m train.classroom --build-bank                 # the room impulse-response bank (once, a few minutes)
    python -m train.copies --condition classroom --copies 1 --split train   # copies of the training clips

One simulated clip (`simulate`), in the order sound travels:
1. half a second of silence is put before and after the speech, so the clip starts and ends in room noise;
2. the room: the speech is convolved (FFT) with a room impulse response drawn from a bank simulated once by
   pyroomacoustics' image-source model: shoebox rooms ROOM_*_M, RT60 in RT60_S (pyroomacoustics.inverse_sabine),
   the microphone MIC_DISTANCE_M from the pupil's mouth;
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

import argparse
import hashlib
import io
import os
import sys
import time
from dataclasses import asdict, dataclass
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

# --- the classroom (units in the names) -----------------------------------------------------------
ROOM_X_M, ROOM_Y_M, ROOM_Z_M = (5.0, 10.0), (5.0, 9.0), (2.7, 3.5)  # shoebox length, width, height
RT60_S = (0.3, 0.9)  # target reverberation time, turned into wall absorption by inverse_sabine
MIC_DISTANCE_M = (0.3, 1.2)  # laptop microphone to the pupil's mouth
MIC_HEIGHT_M = (0.7, 0.9)  # a laptop on a desk
MOUTH_HEIGHT_M = (1.0, 1.3)  # a seated pupil
WALL_MARGIN_M = 0.5  # nobody sits closer to a wall
BABBLE_SEAT_MIN_DISTANCE_M = 1.5  # other talkers are at least this far from the microphone
BANK_ROOMS = 200  # rooms in the impulse-response bank
BANK_POSITIONS = 3  # microphone + pupil placements per room
BANK_BABBLE_SEATS = 5  # other talkers' seats per room (each with a response to every microphone)
BANK_SEED = 20261128
RIR_KEEP_DB = 50.0  # an impulse response is cut where its remaining energy is this far below the total

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

BANK_FILE = "rir_bank.npz"
EVAL_COPY = 0  # the copy index train.evaluate simulates (validation copy 0 is the same clips)


# --- seeding ----------------------------------------------------------------------------------------
def clip_rng(key: str, copy: int = 0) -> np.random.Generator:
    """The Generator of one simulated copy of one clip: from sha256 of its key (the clip's path relative to
    the data directory) and the copy index. Same key and copy -> same simulation, on any machine."""
    digest = hashlib.sha256(f"{key}|{copy}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def _u(rng: np.random.Generator, lo_hi) -> float:
    return float(rng.uniform(*lo_hi))


# --- the impulse-response bank ----------------------------------------------------------------------
@dataclass
class RirBank:
    """Room impulse responses at SAMPLE_RATE, simulated once.

    rirs: float32 (total,) all responses end to end; index: int64 (rooms, BANK_POSITIONS, 1 + seats, 2)
    (offset, length) of [pupil -> microphone, seat_1 -> microphone, ...] for each placement;
    rt60_s (rooms,) target RT60; dims_m (rooms, 3); distance_m (rooms, positions) mouth to microphone."""

    rirs: np.ndarray
    index: np.ndarray
    rt60_s: np.ndarray
    dims_m: np.ndarray
    distance_m: np.ndarray

    @property
    def n_rooms(self) -> int:
        return self.index.shape[0]

    def rir(self, room: int, position: int, source: int) -> np.ndarray:
        """source 0 = the pupil, 1.. = babble seats. -> float32 (taps,)."""
        off, n = self.index[room, position, source]
        return self.rirs[off : off + n]

    def save(self, path: Path) -> None:
        np.savez(path, **asdict(self))

    @classmethod
    def load(cls, path: Path) -> RirBank:
        with np.load(path) as z:
            return cls(**{k: z[k] for k in ("rirs", "index", "rt60_s", "dims_m", "distance_m")})


def _seat(rng, dims, height_m) -> np.ndarray:
    return np.array([rng.uniform(WALL_MARGIN_M, dims[0] - WALL_MARGIN_M),
                     rng.uniform(WALL_MARGIN_M, dims[1] - WALL_MARGIN_M), _u(rng, height_m)])


def _trim(rir: np.ndarray) -> np.ndarray:
    """Cut the response where the energy still to come is RIR_KEEP_DB below the total (Schroeder)."""
    remaining = np.cumsum((rir.astype(np.float64) ** 2)[::-1])[::-1]
    keep = np.flatnonzero(remaining > remaining[0] * 10 ** (-RIR_KEEP_DB / 10))
    return rir[: keep[-1] + 1 if keep.size else len(rir)]


def simulate_room(rng: np.random.Generator):
    """One shoebox room from pyroomacoustics' image-source model.
    -> (dims (3,), rt60_s, distances (positions,), rirs [[pupil, seat_1, ...] per position] of float32)."""
    import pyroomacoustics as pra

    dims = np.array([_u(rng, ROOM_X_M), _u(rng, ROOM_Y_M), _u(rng, ROOM_Z_M)])
    rt60 = _u(rng, RT60_S)
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    mics, mouths, distances = [], [], []
    while len(mics) < BANK_POSITIONS:
        mic = _seat(rng, dims, MIC_HEIGHT_M)
        d = _u(rng, MIC_DISTANCE_M)
        mouth_z = _u(rng, MOUTH_HEIGHT_M)
        horizontal = np.sqrt(max(d**2 - (mouth_z - mic[2]) ** 2, 0.0))
        azimuth = rng.uniform(0, 2 * np.pi)
        mouth = np.array([mic[0] + horizontal * np.cos(azimuth), mic[1] + horizontal * np.sin(azimuth), mouth_z])
        if np.all(mouth[:2] > 0.2) and np.all(mouth[:2] < dims[:2] - 0.2):
            mics.append(mic)
            mouths.append(mouth)
            distances.append(float(np.linalg.norm(mouth - mic)))
    seats = []
    for _ in range(100 * BANK_BABBLE_SEATS):
        s = _seat(rng, dims, MOUTH_HEIGHT_M)
        if all(np.linalg.norm(s[:2] - m[:2]) >= BABBLE_SEAT_MIN_DISTANCE_M for m in mics):
            seats.append(s)
            if len(seats) == BANK_BABBLE_SEATS:
                break
    while len(seats) < BANK_BABBLE_SEATS:  # a small room crowded by microphones: take the farthest corners
        seats.append(np.array([WALL_MARGIN_M if len(seats) % 2 else dims[0] - WALL_MARGIN_M,
                               WALL_MARGIN_M if len(seats) % 3 else dims[1] - WALL_MARGIN_M, 1.1]))
    room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=max_order)
    for src in mouths + seats:
        room.add_source(src)
    room.add_microphone_array(np.array(mics).T)
    room.compute_rir()
    rirs = []
    for p in range(BANK_POSITIONS):
        sources = [p] + [BANK_POSITIONS + s for s in range(BANK_BABBLE_SEATS)]
        rirs.append([_trim(np.asarray(room.rir[p][s], dtype=np.float32)) for s in sources])
    return dims, rt60, np.array(distances), rirs


def build_bank(n_rooms: int = BANK_ROOMS, seed: int = BANK_SEED, progress: bool = False) -> RirBank:
    """Simulate n_rooms rooms, each from its own seeded Generator (room i is the same whatever n_rooms)."""
    chunks, index, rt60s, dims_all, dists, offset = [], [], [], [], [], 0
    for i in range(n_rooms):
        dims, rt60, distances, rirs = simulate_room(np.random.default_rng([seed, i]))
        room_index = []
        for per_position in rirs:
            row = []
            for r in per_position:
                row.append((offset, len(r)))
                chunks.append(r)
                offset += len(r)
            room_index.append(row)
        index.append(room_index)
        rt60s.append(rt60)
        dims_all.append(dims)
        dists.append(distances)
        if progress and (i + 1) % 10 == 0:
            print(f"room {i + 1}/{n_rooms}", flush=True)
    return RirBank(np.concatenate(chunks).astype(np.float32), np.array(index, dtype=np.int64),
                   np.array(rt60s), np.array(dims_all), np.array(dists))


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

    x = colorednoise.powerlaw_psd_gaussian(_u(rng, HVAC_BETA), n_samples, random_state=rng)
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


def simulate_scene(audio: np.ndarray, rng: np.random.Generator, bank: RirBank, babble_pool: BabblePool,
                   exclude_speaker: str | None = None):
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
    snr_db = _u(rng, SNR_DB)
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
            hvac *= np.sqrt(power(noise) * 10 ** (-_u(rng, HVAC_BELOW_BABBLE_DB) / 10))
        noise += hvac
    noise *= np.sqrt(speech_power / max(power(noise), 1e-20) / 10 ** (snr_db / 10))

    y = microphone_band(speech + noise)
    clipped = bool(rng.random() < CLIP_SHARE)
    peak_dbfs = _u(rng, CLIP_OVERDRIVE_DB) if clipped else _u(rng, PEAK_DBFS)
    y = set_level(y, peak_dbfs, clipped)
    bitrate = int(rng.integers(OPUS_BITRATE_BPS[0], OPUS_BITRATE_BPS[1] + 1))
    out = opus_round_trip(y, bitrate)
    scene = Scene(room, position, float(bank.rt60_s[room]), float(bank.distance_m[room, position]), kind,
                  snr_db, talkers, peak_dbfs, clipped, bitrate)
    return out, scene, {"speech": speech, "noise": noise, "active": active}


def simulate(audio16k: np.ndarray, rng: np.random.Generator, bank: RirBank, babble_pool: BabblePool,
             exclude_speaker: str | None = None) -> np.ndarray:
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


# --- the bank on disk -----------------------------------------------------------------------------------
def bank_path(cache: Path) -> Path:
    return Path(cache) / BANK_FILE


def load_bank(cache: Path) -> RirBank:
    path = bank_path(cache)
    if not path.is_file():
        raise FileNotFoundError(f"no room impulse-response bank at {path}: build it with "
                                f"`python -m train.classroom --build-bank --cache {cache}`")
    return RirBank.load(path)


def main(argv=None) -> int:
    from .cache import cache_dir

    ap = argparse.ArgumentParser(description="Classroom simulation: the room impulse-response bank (copies: train.copies).")
    ap.add_argument("--cache", help="feature cache directory (default $EMOTION_CACHE_DIR or ./cache)")
    ap.add_argument("--build-bank", action="store_true", help=f"simulate the bank of {BANK_ROOMS} rooms (once)")
    ap.add_argument("--rooms", type=int, default=BANK_ROOMS)
    args = ap.parse_args(argv)
    cache = cache_dir(args.cache)
    if not args.build_bank:
        ap.print_help()
        return 2
    if bank_path(cache).exists():
        print(f"{bank_path(cache)} exists; not overwritten", file=sys.stderr)
        return 0
    t = time.perf_counter()
    bank = build_bank(args.rooms, progress=True)
    cache.mkdir(parents=True, exist_ok=True)
    bank.save(bank_path(cache))
    print(f"wrote {bank_path(cache)}: {bank.n_rooms} rooms, {bank.rirs.nbytes / 1e6:.0f} MB, "
          f"{time.perf_counter() - t:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
