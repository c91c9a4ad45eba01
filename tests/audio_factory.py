"""Synthetic test audio: signals made from formulas and encoded in memory. No dataset files.

Signal generators return float32 of shape (n,) when `channels` is None, else (n, channels). Channel c of a
multichannel signal is the mono signal times `channel_gain(c)`, so the down-mix (the channel mean) differs
from every single channel. `encode(signal, rate, fmt)` writes any of FORMATS to bytes; `unsupported(fmt,
rate, channels)` says why a combination cannot be written (None when it can).
"""
from __future__ import annotations

import io

import numpy as np

# --- signals ------------------------------------------------------------------------------------


def n_samples(rate: int, seconds: float) -> int:
    return int(round(rate * seconds))


def channel_gain(c: int) -> float:
    return 1.0 - 0.1 * c


def spread(mono: np.ndarray, channels: int | None) -> np.ndarray:
    """(n,) -> (n, channels) with channel c scaled by channel_gain(c); None keeps (n,)."""
    mono = np.asarray(mono, dtype=np.float32)
    if channels is None:
        return mono
    return np.stack([mono * channel_gain(c) for c in range(channels)], axis=1).astype(np.float32)


def mean_gain(channels: int | None) -> float:
    """Amplitude factor of the channel mean of spread(x, channels) relative to x."""
    return 1.0 if channels is None else float(np.mean([channel_gain(c) for c in range(channels)]))


def fade(x: np.ndarray, rate: int, seconds: float = 0.01) -> np.ndarray:
    """Raised-cosine fade in and out along axis 0 (removes the clicks of an abrupt start and end)."""
    k = min(n_samples(rate, seconds), x.shape[0] // 2)
    if k == 0:
        return x
    ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(k) / k)).astype(np.float32)
    shape = (k,) + (1,) * (x.ndim - 1)
    x = x.copy()
    x[:k] *= ramp.reshape(shape)
    x[-k:] *= ramp[::-1].reshape(shape)
    return x


def tone(rate: int, seconds: float = 0.8, hz: float = 440.0, amp: float = 0.5, channels: int | None = None,
         ramp_s: float = 0.0) -> np.ndarray:
    t = np.arange(n_samples(rate, seconds)) / rate
    x = (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    if ramp_s:
        x = fade(x, rate, ramp_s)
    return spread(x, channels)


def tones_per_channel(rate: int, freqs, seconds: float = 0.8, amp: float = 0.4) -> np.ndarray:
    """(n, len(freqs)): a different tone in each channel, all of amplitude `amp`."""
    return np.stack([tone(rate, seconds, hz, amp) for hz in freqs], axis=1)


def noise(rate: int, seconds: float = 0.8, amp: float = 0.2, seed: int = 0, channels: int | None = None) -> np.ndarray:
    """Gaussian white noise of RMS `amp`, clipped to [-1, 1]."""
    x = np.clip(amp * np.random.default_rng(seed).standard_normal(n_samples(rate, seconds)), -1, 1)
    return spread(x, channels)


def chirp(rate: int, seconds: float = 0.8, f0: float = 200.0, f1: float = 3000.0, amp: float = 0.4,
          channels: int | None = None) -> np.ndarray:
    """Linear sweep from f0 to f1 Hz."""
    t = np.arange(n_samples(rate, seconds)) / rate
    x = amp * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds)))
    return spread(x, channels)


# (F1, F2, F3) in Hz of a few vowels (adult male averages, Peterson & Barney)
VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410))


def _formant_gain(hz: np.ndarray, formants, bandwidth: float = 90.0) -> np.ndarray:
    """Magnitude of a cascade of second-order resonances (a vowel's spectral envelope) at `hz`."""
    g = np.ones_like(hz, dtype=np.float64)
    for f in formants:
        g *= f**2 / np.sqrt((f**2 - hz**2) ** 2 + (bandwidth * hz) ** 2)
    return g


def speech_like(rate: int, seconds: float = 1.2, seed: int = 0, amp: float = 0.3, channels: int | None = None,
                syllable_s=(0.12, 0.25), pause_s=(0.04, 0.12)) -> np.ndarray:
    """Syllables separated by short pauses. Each syllable: a harmonic complex on a 120-250 Hz pitch
    contour, harmonics weighted by a vowel's formant envelope, with a smooth attack and decay.
    Exactly n_samples(rate, seconds) long; starts with a syllable and ends in one or in a pause."""
    rng = np.random.default_rng(seed)
    n = n_samples(rate, seconds)
    out = np.zeros(n)
    pos = 0
    while pos < n:
        length = min(n_samples(rate, rng.uniform(*syllable_s)), n - pos)
        t = np.arange(length) / rate
        f_start, f_end = rng.uniform(120, 250, size=2)
        f0 = f_start + (f_end - f_start) * t / max(t[-1], 1e-9) if length > 1 else np.full(length, f_start)
        phase = 2 * np.pi * np.cumsum(f0) / rate
        formants = VOWELS[rng.integers(len(VOWELS))]
        mean_f0 = float(f0.mean())
        syl = np.zeros(length)
        for k in range(1, int(min(4000.0, 0.45 * rate) / mean_f0) + 1):
            syl += _formant_gain(np.array([k * mean_f0]), formants)[0] * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
        syl *= np.sin(np.pi * np.arange(length) / length) ** 0.5  # attack and decay
        out[pos : pos + length] = syl / (np.abs(syl).max() + 1e-12) * rng.uniform(0.6, 1.0)
        pos += length + n_samples(rate, rng.uniform(*pause_s))
    out += 1e-3 * rng.standard_normal(n) * (np.abs(out) > 0)  # a little breath noise inside syllables only
    return spread(amp * out / np.abs(out).max(), channels)


# --- encoding -----------------------------------------------------------------------------------
# name -> (file suffix, lossy)
FORMATS = {
    "wav16": (".wav", False),
    "wav24": (".wav", False),
    "wavf32": (".wav", False),
    "wav8": (".wav", False),
    "aiff": (".aiff", False),
    "flac": (".flac", False),
    "ogg_vorbis": (".ogg", True),
    "ogg_opus": (".opus", True),
    "mp3": (".mp3", True),
    "m4a_aac": (".m4a", True),
    "webm_opus": (".webm", True),
}

_SOUNDFILE = {
    "wav16": ("WAV", "PCM_16"),
    "wav24": ("WAV", "PCM_24"),
    "wavf32": ("WAV", "FLOAT"),
    "wav8": ("WAV", "PCM_U8"),
    "aiff": ("AIFF", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg_vorbis": ("OGG", "VORBIS"),
    "ogg_opus": ("OGG", "OPUS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}
_PYAV = {"m4a_aac": ("ipod", "aac"), "webm_opus": ("webm", "libopus")}

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)  # the only rates an Opus encoder accepts
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)  # MPEG-1/2/2.5 layer III
_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 8: "7.1"}


def unsupported(fmt: str, rate: int, channels: int) -> str | None:
    """Why `fmt` cannot hold audio at `rate` Hz with `channels` channels, or None if it can."""
    if fmt not in FORMATS:
        raise KeyError(fmt)
    if fmt == "mp3":
        if channels > 2:
            return "MP3 holds at most 2 channels"
        if rate not in MP3_RATES:
            return f"MP3 has no {rate} Hz sample rate (max 48 kHz)"
    if fmt == "ogg_opus" and rate not in OPUS_RATES:
        return f"Opus encodes only at 8/12/16/24/48 kHz, not {rate} Hz"
    if fmt == "webm_opus":
        if rate != 48000:
            return "Opus in WebM (what browsers record) is tested at 48 kHz only"
        if channels not in _LAYOUTS:
            return f"no channel layout for {channels} channels"
    if fmt == "m4a_aac" and channels not in _LAYOUTS:
        return f"no channel layout for {channels} channels"
    return None


def encode(signal: np.ndarray, rate: int, fmt: str) -> bytes:
    """Float signal (n,) or (n, channels) in [-1, 1] -> the bytes of a `fmt` file."""
    x = np.asarray(signal, dtype=np.float32)
    x2 = x[:, None] if x.ndim == 1 else x
    reason = unsupported(fmt, rate, x2.shape[1])
    if reason:
        raise ValueError(reason)
    if fmt in _SOUNDFILE:
        import soundfile as sf

        container, subtype = _SOUNDFILE[fmt]
        buf = io.BytesIO()
        sf.write(buf, x, rate, format=container, subtype=subtype)
        return buf.getvalue()
    return _encode_av(x2, rate, *_PYAV[fmt])


def _encode_av(x: np.ndarray, rate: int, container: str, codec: str) -> bytes:
    import av

    layout = _LAYOUTS[x.shape[1]]
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x.T), format="fltp", layout=layout)
        frame.sample_rate = rate
        frame.pts = 0  # with a timestamp the muxer writes the encoder delay into the file (an edit list)
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def wav_bytes(signal, rate: int = 16000, subtype: str = "PCM_16") -> bytes:
    """Shortcut for WAV with any libsndfile subtype (FLOAT keeps NaN, inf and values beyond +-1)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.asarray(signal, dtype=np.float32), rate, format="WAV", subtype=subtype)
    return buf.getvalue()


# --- measuring ----------------------------------------------------------------------------------


def spectrum(x: np.ndarray, rate: int = 16000):
    """(freqs Hz, amplitude) of a Hann-windowed FFT, scaled so a sine of amplitude A reads ~A."""
    x = np.asarray(x, dtype=np.float64)
    w = np.hanning(len(x))
    return np.fft.rfftfreq(len(x), 1 / rate), 2 * np.abs(np.fft.rfft(x * w)) / w.sum()


def peak_hz(x: np.ndarray, rate: int = 16000) -> float:
    f, a = spectrum(x, rate)
    return float(f[a.argmax()])


def amplitude_at(x: np.ndarray, hz: float, rate: int = 16000, width_hz: float = 20.0) -> float:
    f, a = spectrum(x, rate)
    return float(a[np.abs(f - hz) <= width_hz].max())


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


def db(ratio: float) -> float:
    return 20 * np.log10(max(ratio, 1e-300))
