"""The classroom's rooms: a bank of room impulse responses simulated once by pyroomacoustics' image-source model.

    python -m train.rooms --build-bank     # $EMOTION_CACHE_DIR/rir_bank.npz, seeded, once (about 12 minutes, one core)

Shoebox rooms ROOM_*_M with RT60 in RT60_S (pyroomacoustics.inverse_sabine); in each, BANK_POSITIONS placements
of a laptop microphone MIC_DISTANCE_M from a seated pupil's mouth, and BANK_BABBLE_SEATS other pupils' seats at
least BABBLE_SEAT_MIN_DISTANCE_M from the microphones. train.classroom puts speech and babble through them.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from emotion_core.audio import SAMPLE_RATE

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
BANK_FILE = "rir_bank.npz"


def uniform(rng: np.random.Generator, lo_hi) -> float:
    """One draw uniform in the (low, high) range."""
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
    return np.array(
        [
            rng.uniform(WALL_MARGIN_M, dims[0] - WALL_MARGIN_M),
            rng.uniform(WALL_MARGIN_M, dims[1] - WALL_MARGIN_M),
            uniform(rng, height_m),
        ]
    )


def _trim(rir: np.ndarray) -> np.ndarray:
    """Cut the response where the energy still to come is RIR_KEEP_DB below the total (Schroeder)."""
    remaining = np.cumsum((rir.astype(np.float64) ** 2)[::-1])[::-1]
    keep = np.flatnonzero(remaining > remaining[0] * 10 ** (-RIR_KEEP_DB / 10))
    return rir[: keep[-1] + 1 if keep.size else len(rir)]


def simulate_room(rng: np.random.Generator):
    """One shoebox room from pyroomacoustics' image-source model.
    -> (dims (3,), rt60_s, distances (positions,), rirs [[pupil, seat_1, ...] per position] of float32)."""
    import pyroomacoustics as pra

    dims = np.array([uniform(rng, ROOM_X_M), uniform(rng, ROOM_Y_M), uniform(rng, ROOM_Z_M)])
    rt60 = uniform(rng, RT60_S)
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    mics, mouths, distances = [], [], []
    while len(mics) < BANK_POSITIONS:
        mic = _seat(rng, dims, MIC_HEIGHT_M)
        d = uniform(rng, MIC_DISTANCE_M)
        mouth_z = uniform(rng, MOUTH_HEIGHT_M)
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
        seats.append(
            np.array(
                [
                    WALL_MARGIN_M if len(seats) % 2 else dims[0] - WALL_MARGIN_M,
                    WALL_MARGIN_M if len(seats) % 3 else dims[1] - WALL_MARGIN_M,
                    1.1,
                ]
            )
        )
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
    return RirBank(
        np.concatenate(chunks).astype(np.float32),
        np.array(index, dtype=np.int64),
        np.array(rt60s),
        np.array(dims_all),
        np.array(dists),
    )


# --- the bank on disk -----------------------------------------------------------------------------------
def bank_path(cache: Path) -> Path:
    return Path(cache) / BANK_FILE


def load_bank(cache: Path) -> RirBank:
    path = bank_path(cache)
    if not path.is_file():
        raise FileNotFoundError(
            f"no room impulse-response bank at {path}: build it with "
            f"`python -m train.rooms --build-bank --cache {cache}`"
        )
    return RirBank.load(path)


def main(argv=None) -> int:
    from .cache import cache_dir

    ap = argparse.ArgumentParser(description="The classroom's room impulse-response bank (copies: train.copies).")
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
    print(
        f"wrote {bank_path(cache)}: {bank.n_rooms} rooms, {bank.rirs.nbytes / 1e6:.0f} MB, "
        f"{time.perf_counter() - t:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
