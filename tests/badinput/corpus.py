"""The bad-audio corpus (issue 5), made in memory: nothing is committed but this code.

Each case is bytes, the extension its file gets, and what nsaudio does with it as a file
argument and on stdin (two different readers: libsndfile, and nsaudio's own WAV parser or a
spool to libsndfile). ``PLAYS`` means exit 0 with the audio that is there; ``ERROR`` means exit
2 with one line on stderr.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import soundfile as sf

RATE = 16000
PLAYS, ERROR = "plays", "error"
N = 8000  # half a second of the 16 kHz test sine
BIG = 10**6
ALL_ONES = 0xFFFFFFFF


@dataclass(frozen=True)
class Case:
    id: str
    ext: str
    make: Callable[[], bytes]
    file: str  # PLAYS or ERROR, as a file argument
    stdin: str  # PLAYS or ERROR, piped on stdin
    note: str  # what the case is, for the README section
    #: For PLAYS: output samples at 16 kHz when exact, else None.
    frames: int | None = None
    #: For PLAYS: "exact" (the 16-bit sine, bit for bit), "s24" (within 1 LSB of it),
    #: "sine" (a lossy or damaged decode: 440 Hz at about the right level), or "empty".
    check: str = "exact"
    #: For PLAYS: a warning line on stderr is expected (audio was left out).
    warns: bool = False


def sine(n: int, rate: int = RATE, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / rate)).astype(np.float32)


@cache
def pcm16() -> bytes:
    """The test signal as 16-bit PCM: every WAV case that plays must give back exactly this."""
    return np.round(sine(N) * 32767).astype("<i2").tobytes()


@cache
def s24() -> bytes:
    v = np.round(sine(N) * (2**23 - 1)).astype("<i4").tobytes()
    return b"".join(v[i : i + 3] for i in range(0, len(v), 4))


def chunk(cid: bytes, body: bytes, size: int | None = None) -> bytes:
    pad = b"\x00" if len(body) & 1 else b""
    return cid + struct.pack("<I", len(body) if size is None else size) + body + pad


def fmt_chunk(
    *, tag=1, channels=1, rate=RATE, bits=16, block_align=None, byte_rate=None, size=None
) -> bytes:
    align = channels * bits // 8 if block_align is None else block_align
    byte_rate = rate * align if byte_rate is None else byte_rate
    body = struct.pack(
        "<HHIIHH", tag, channels, rate & ALL_ONES, byte_rate & ALL_ONES, align & 0xFFFF, bits
    )
    return chunk(b"fmt ", body, size)


def riff(*chunks: bytes, size: int | None = None, form: bytes = b"WAVE") -> bytes:
    body = form + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body) if size is None else size) + body


def wav(samples: bytes, *, riff_size=None, data_size=None, **fmt) -> bytes:
    data = b"data" + struct.pack("<I", len(samples) if data_size is None else data_size) + samples
    return riff(fmt_chunk(**fmt), data, size=riff_size)


def encoded(fmt: str, subtype: str, data: np.ndarray | None = None, rate: int = RATE) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, sine(N) if data is None else data, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


@cache
def music() -> np.ndarray:
    """Three seconds of a 440 Hz tone with some noise: compressed files big enough that half
    of one is well past its headers."""
    noise = np.random.default_rng(5).standard_normal(3 * RATE).astype(np.float32)
    return sine(3 * RATE, amp=0.3) + np.float32(0.05) * noise


@cache
def compressed(fmt: str, subtype: str) -> bytes:
    return encoded(fmt, subtype, music())


def random_bytes(n: int, seed: int, prefix: bytes = b"") -> bytes:
    return prefix + np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def cut(data: bytes, fraction: float) -> bytes:
    return data[: int(len(data) * fraction)]


def damaged(data: bytes, seed: int = 1, length: int = 200) -> bytes:
    """``length`` random bytes written over the middle."""
    mid = len(data) // 2
    return data[:mid] + random_bytes(length, seed) + data[mid + length :]


def _flac_frames_at(data: bytes) -> int:
    return data.find(b"\xff\xf8")  # the first frame's sync code, after the metadata


def _cases() -> list[Case]:
    pcm = pcm16()
    c = Case

    def both(id, ext, make, outcome, note, **kw):
        return c(id, ext, make, outcome, outcome, note, **kw)

    flac = lambda: compressed("FLAC", "PCM_16")  # noqa: E731
    mp3 = lambda: compressed("MP3", "MPEG_LAYER_III")  # noqa: E731
    ogg = lambda: compressed("OGG", "VORBIS")  # noqa: E731
    opus = lambda: compressed("OGG", "OPUS")  # noqa: E731
    aiff = lambda: compressed("AIFF", "PCM_16")  # noqa: E731
    return [
        # --- RIFF and data sizes: the data runs to the end of the file
        both("riff_size_ffffffff", "wav", lambda: wav(pcm, riff_size=ALL_ONES), PLAYS,
             "RIFF size 0xFFFFFFFF", frames=N),
        both("data_size_ffffffff", "wav", lambda: wav(pcm, data_size=ALL_ONES), PLAYS,
             "data size 0xFFFFFFFF", frames=N),
        both("both_sizes_ffffffff", "wav", lambda: wav(pcm, riff_size=ALL_ONES, data_size=ALL_ONES),
             PLAYS, "RIFF and data sizes 0xFFFFFFFF (ffmpeg to a pipe)", frames=N),
        both("both_sizes_zero", "wav", lambda: wav(pcm, riff_size=0, data_size=0), PLAYS,
             "RIFF and data sizes 0 (a streaming writer's placeholders)", frames=N),
        both("riff_size_beyond_eof", "wav", lambda: wav(pcm, riff_size=len(pcm) + BIG), PLAYS,
             "RIFF size 1 MB beyond the end of the file", frames=N),
        both("data_size_beyond_eof", "wav", lambda: wav(pcm, data_size=len(pcm) + BIG), PLAYS,
             "data size 1 MB beyond the end of the file", frames=N),
        both("both_sizes_beyond_eof", "wav",
             lambda: wav(pcm, riff_size=len(pcm) + BIG, data_size=len(pcm) + BIG), PLAYS,
             "RIFF and data sizes beyond the end of the file", frames=N),
        both("riff_size_too_small", "wav", lambda: wav(pcm, riff_size=36), PLAYS,
             "RIFF size 36, smaller than the file", frames=N),
        # --- fmt fields
        c("block_align_0", "wav", lambda: wav(pcm, block_align=0), PLAYS, ERROR,
          "block align 0", frames=N),
        both("channels_0", "wav", lambda: wav(pcm, channels=0, block_align=2), ERROR,
             "0 channels"),
        both("channels_1025", "wav", lambda: wav(pcm, channels=1025), ERROR, "1025 channels"),
        both("rate_0", "wav", lambda: wav(pcm, rate=0), ERROR, "sample rate 0"),
        both("rate_1", "wav", lambda: wav(pcm, rate=1), ERROR, "sample rate 1 Hz"),
        both("rate_2147483647", "wav", lambda: wav(pcm, rate=2**31 - 1), ERROR,
             "sample rate 2^31-1 Hz"),
        both("rate_4294967295", "wav", lambda: wav(pcm, rate=2**32 - 1), ERROR,
             "sample rate field 0xFFFFFFFF (2^32-1)"),
        # --- structure
        both("header_only", "wav", lambda: wav(b""), PLAYS,
             "header only: data size 0 and no data bytes", frames=0, check="empty"),
        both("header_only_size_declared", "wav", lambda: wav(b"", data_size=len(pcm)), PLAYS,
             "header only, the data size says 16000 bytes", frames=0, check="empty"),
        both("int16_cut_mid_sample", "wav", lambda: wav(pcm[:-1], data_size=len(pcm)), PLAYS,
             "16-bit data cut mid-sample (odd byte count, size says more)", frames=N - 1),
        both("int16_odd_data_size", "wav", lambda: wav(pcm[:-1]), PLAYS,
             "16-bit data chunk of odd size", frames=N - 1),
        both("s24_cut_1_byte", "wav", lambda: wav(s24()[:-2], data_size=len(s24()), bits=24),
             PLAYS, "24-bit data cut 1 byte into the last sample", frames=N - 1, check="s24"),
        both("s24_cut_2_bytes", "wav", lambda: wav(s24()[:-1], data_size=len(s24()), bits=24),
             PLAYS, "24-bit data cut 2 bytes into the last sample", frames=N - 1, check="s24"),
        both("fmt_truncated_eof", "wav", lambda: wav(pcm)[:30], ERROR,
             "file ends inside the fmt chunk"),
        both("fmt_chunk_10_bytes", "wav",
             lambda: riff(chunk(b"fmt ", fmt_chunk()[8:18]), chunk(b"data", pcm)), ERROR,
             "fmt chunk of 10 bytes"),
        both("data_before_fmt", "wav", lambda: riff(chunk(b"data", pcm), fmt_chunk()), ERROR,
             "data chunk before the fmt chunk"),
        both("no_fmt_chunk", "wav", lambda: riff(chunk(b"data", pcm)), ERROR, "no fmt chunk"),
        both("no_data_chunk", "wav", lambda: riff(fmt_chunk()), ERROR, "no data chunk"),
        both("fmt_size_huge", "wav",
             lambda: riff(fmt_chunk(size=0xFFFFFFF0)[:-16] + fmt_chunk()[8:], chunk(b"data", pcm)),
             ERROR, "fmt chunk size 0xFFFFFFF0"),
        both("list_chunk_huge", "wav",
             lambda: riff(fmt_chunk(), chunk(b"LIST", b"INFO", size=0x7FFFFFFF), chunk(b"data", pcm)),
             ERROR, "LIST chunk of 2 GiB (past the end) between fmt and data"),
        both("junk_chunk_huge", "wav",
             lambda: riff(chunk(b"JUNK", b"", size=0xFFFFFFF0), fmt_chunk(), chunk(b"data", pcm)),
             ERROR, "JUNK chunk of 4 GiB before fmt"),
        both("riff_not_wave", "wav", lambda: riff(chunk(b"data", pcm), form=b"AVI "), ERROR,
             "a RIFF of another form (AVI)"),
        # --- encodings the stream parser does not decode (libsndfile does, for files)
        c("ms_adpcm", "wav", lambda: encoded("WAV", "MS_ADPCM"), PLAYS, ERROR,
          "MS ADPCM (tag 2), well formed", check="sine"),
        c("ima_adpcm", "wav", lambda: encoded("WAV", "IMA_ADPCM"), PLAYS, ERROR,
          "IMA ADPCM (tag 0x11), well formed", check="sine"),
        c("gsm610", "wav", lambda: encoded("WAV", "GSM610"), PLAYS, ERROR,
          "GSM 6.10 (tag 0x31), well formed", check="sine"),
        both("adpcm_bare_fmt", "wav", lambda: wav(pcm, tag=2, bits=4, block_align=256), ERROR,
             "tag 2 (MS ADPCM) with a bare 16-byte fmt chunk"),
        c("pcm_12_bit", "wav", lambda: wav(pcm, bits=12, block_align=2), PLAYS, ERROR,
          "12-bit PCM in 2-byte containers", frames=N),
        both("unknown_tag", "wav", lambda: wav(pcm, tag=0x1234), ERROR, "format tag 0x1234"),
        # --- not audio
        *[both(f"random_{ext}", ext, lambda seed=seed: random_bytes(4096, seed), ERROR,
               f"4 KiB of random bytes named .{ext}")
          for seed, ext in enumerate(("wav", "flac", "mp3", "ogg", "aiff"))],
        *[both(f"random_after_{name}", ext, lambda seed=seed, m=magic: random_bytes(4096, seed, m),
               ERROR, f"random bytes after a {name} magic")
          for seed, (name, ext, magic) in enumerate((
              ("RIFF_WAVE", "wav", b"RIFF\xff\xff\xff\xffWAVE"), ("fLaC", "flac", b"fLaC"),
              ("ID3", "mp3", b"ID3"), ("OggS", "ogg", b"OggS"), ("FORM", "aiff", b"FORM")),
              start=10)],
        both("text_named_wav", "wav", lambda: b"this is not audio, just some text\n" * 20, ERROR,
             "a text file named .wav"),
        *[both(f"empty_{ext}", ext, lambda: b"", ERROR, f"an empty .{ext} file")
          for ext in ("wav", "flac", "mp3", "ogg", "aiff")],
        # --- compressed, cut short or damaged
        both("flac_cut_half", "flac", lambda: cut(flac(), 0.5), PLAYS,
             "FLAC cut in the middle", check="sine", warns=True),
        both("flac_cut_in_streaminfo", "flac", lambda: flac()[:30], ERROR,
             "FLAC cut inside its STREAMINFO"),
        both("flac_garbage_frames", "flac",
             lambda: flac()[: _flac_frames_at(flac())] + random_bytes(20000, 3), ERROR,
             "FLAC headers followed by random bytes"),
        both("flac_damaged_middle", "flac", lambda: damaged(flac()), PLAYS,
             "FLAC with 200 random bytes over its middle", check="sine", warns=True),
        both("mp3_cut_half", "mp3", lambda: cut(mp3(), 0.5), PLAYS,
             "MP3 cut in the middle", check="sine"),
        both("mp3_damaged_middle", "mp3", lambda: damaged(mp3()), PLAYS,
             "MP3 with 200 random bytes over its middle", check="sine"),
        both("ogg_cut_half", "ogg", lambda: cut(ogg(), 0.5), PLAYS,
             "OGG/Vorbis cut in the middle", check="sine"),
        both("ogg_cut_in_headers", "ogg", lambda: ogg()[:600], ERROR,
             "OGG/Vorbis cut inside its headers"),
        both("opus_cut_half", "opus", lambda: cut(opus(), 0.5), PLAYS,
             "OGG/Opus cut in the middle", check="sine"),
        both("aiff_cut_half", "aiff", lambda: cut(aiff(), 0.5), PLAYS,
             "AIFF cut in the middle of its sound data", check="sine"),
    ]  # fmt: skip


CASES: list[Case] = _cases()
BY_ID = {case.id: case for case in CASES}
assert len(BY_ID) == len(CASES), "duplicate case ids"
