"""Downmix to mono and resample with soxr, streaming, flushed at end of stream."""

from __future__ import annotations

import numpy as np
import soxr

from ..blocks import Block
from ..errors import InputError

__all__ = ["QUALITIES", "Resampler", "downmix_weights", "out_position"]

#: soxr quality names, as python-soxr spells them.
QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")


def downmix_weights(channels: int, channel: int | None = None) -> np.ndarray:
    """Column of weights: the mean of all channels, or one channel picked (0-based)."""
    if channel is None:
        return np.full((channels, 1), 1.0 / channels, dtype=np.float32)
    if not 0 <= channel < channels:
        raise InputError(
            f"channel {channel} does not exist: the input has {channels} (0 to {channels - 1})"
        )
    w = np.zeros((channels, 1), dtype=np.float32)
    w[channel, 0] = 1.0
    return w


def _full_scale(mono: np.ndarray) -> np.ndarray:
    """``mono`` itself if every sample is within full scale, else a copy with NaN made 0 and
    everything beyond full scale (infinities, and garbage such as 1e30) clipped to it.

    Filtering a 1e30 sample would ring at full scale over the filter's whole length, and runs
    of huge values overflow inside soxr into NaN; clipped first, a bad sample is a click.
    """
    # Two reductions without a temporary; NaN fails both comparisons.
    if not mono.size or (mono.min() >= -1.0 and mono.max() <= 1.0):
        return mono
    out = np.nan_to_num(mono, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(out, -1.0, 1.0, out=out)


#: Rows of int16 audio made float at a time for the downmix (128 kB of stereo).
_CAST_ROWS = 16384


def out_position(start: int, in_rate: int, out_rate: int) -> int:
    """Input position ``start`` at ``out_rate``: ``start * out_rate // in_rate``, rounded down.

    Integer arithmetic, so exact however long the stream: no float accumulates.
    """
    return start * out_rate // in_rate


class _Mono(Block):
    """A block ``prepare()`` made: mono float32 within full scale, not to be checked again."""

    __slots__ = ()


class Resampler:
    """Float32 blocks of any channel count in, mono float32 blocks at ``out_rate`` out (or,
    when the rates are equal and the input is int16 mono, that int16 audio as it is).

    Output equals one-shot ``soxr.resample`` of the whole downmixed input, however the input
    is cut. Samples that are NaN become 0, and samples beyond full scale (infinities, 1e30)
    are clipped to it before filtering, so one bad sample cannot smear over a filter's
    length of output.

    Positions are carried through: a block's ``start`` is its absolute position in the
    source's stream, and output blocks carry the same position at ``out_rate``
    (:func:`out_position`: rounded down). A *gap* is a block whose ``start`` is not where the
    previous block ended (a live ring dropped audio): the stream so far is flushed
    (``last=True``) and a new one starts at the block's mapped position, so the output is
    one-shot soxr of each contiguous run, placed where that run sits in the stream. A run's
    flushed tail is cut where the next run starts, should rounding make them overlap (at
    most one output sample, of the filter's ring-out), so output positions never go back.

    Arguments: ``in_rate`` and ``out_rate``, Hz (positive integers); ``channels``, the input
    blocks' channel count; ``channel``, the one input channel to keep (from 0) instead of
    the mean of all of them; ``quality``, soxr's quality, one of ``QQ``, ``LQ``, ``MQ``,
    ``HQ`` (the default) or ``VHQ``, any case (LQ holds back half as much as HQ: live use).
    Bad values raise :class:`~nsaudio.errors.InputError`.
    """

    def __init__(
        self,
        in_rate: int,
        out_rate: int,
        channels: int = 1,
        *,
        channel: int | None = None,
        quality: str = "HQ",
    ) -> None:
        for name, value in (("input rate", in_rate), ("output rate", out_rate)):
            if not isinstance(value, int) or value <= 0:
                raise InputError(f"{name} must be a positive integer, not {value!r}")
        if not isinstance(channels, int) or channels <= 0:
            raise InputError(f"channel count must be a positive integer, not {channels!r}")
        q = str(quality).upper()
        if q not in QUALITIES:
            raise InputError(
                f"unknown resampler quality {quality!r}: choose one of {', '.join(QUALITIES)}"
            )
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.channels = channels
        self.quality = q
        self._weights = downmix_weights(channels, channel)
        self._channel = channel
        self._int16_weights = self._weights * np.float32(1 / 32768)
        self._stream = (
            soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality=q)
            if in_rate != out_rate
            else None
        )
        self._pos = 0  # output position of the next output sample
        self._next_in: int | None = None  # where the next input block should start
        self._t_ns = 0

    def _mono(self, data: np.ndarray) -> np.ndarray:
        if data.ndim == 1:  # already mono: a mono source, or prepare() ran
            data = data[:, None]
        elif data.shape[1] != self.channels:
            raise InputError(f"expected {self.channels} channels, got {data.shape[1]}")
        if data.dtype == np.int16:  # within full scale by construction
            if data.shape[1] == 1:
                return data[:, 0] * np.float32(1 / 32768)
            # Exact for stereo: each product is the sample times 2**-16, and their sum fits
            # float32's 24-bit mantissa. The float copy numpy would make for the product is
            # made a slice at a time into one small buffer: a whole block's is 512 kB of
            # stereo, fresh pages every block. The buffer is this call's own, so prepare()
            # stays stateless (the runner calls it on the reader's thread).
            cast_rows = np.empty((min(_CAST_ROWS, len(data)), data.shape[1]), np.float32)
            mono = np.empty((len(data), 1), np.float32)
            for i in range(0, len(data), _CAST_ROWS):
                part = data[i : i + _CAST_ROWS]
                cast = cast_rows[: len(part)]
                np.copyto(cast, part)
                np.matmul(cast, self._int16_weights, out=mono[i : i + len(part)])
            return mono[:, 0]
        if data.shape[1] == 1:
            mono = data[:, 0]
        elif self._channel is not None:  # a pick, not a product: inf * 0 would be NaN
            mono = data[:, self._channel]
        else:
            with np.errstate(invalid="ignore"):  # inf - inf across channels: NaN, made 0 below
                mono = (data @ self._weights)[:, 0]
        return _full_scale(np.ascontiguousarray(mono, dtype=np.float32))

    def _emit(self, y: np.ndarray) -> list[Block]:
        if not len(y):
            return []
        block = Block(y, self._pos, self.out_rate, self._t_ns)
        self._pos += len(y)
        return [block]

    def prepare(self, block: Block) -> Block:
        """The downmix alone: stateless, so the runner may do it on the reader's thread.

        ``push()`` takes what this returns without doing the work again.
        """
        if block.rate != self.in_rate:
            raise InputError(
                f"block at {block.rate} Hz pushed into a resampler for {self.in_rate} Hz"
            )
        if type(block) is _Mono:
            return block
        data = block.data
        if data.ndim == 1 and data.dtype == np.float32:
            mono = _full_scale(data)
        elif self._stream is None and data.dtype == np.int16 and self.channels == 1:
            # Nothing to filter or mix: int16 goes on as it is, and the framer takes it so
            # (a telephony stream at 8 kHz: no float round trip, no numpy call per packet).
            mono = data.reshape(-1)
        else:
            mono = self._mono(data)
        return _Mono(mono, block.start, block.rate, block.t_ns)

    def push(self, block: Block) -> list[Block]:
        """Downmix and resample ``block``: the output that is ready (soxr holds some back)."""
        mono = self.prepare(block).data
        out: list[Block] = []
        if block.start != self._next_in:
            start = out_position(block.start, self.in_rate, self.out_rate)
            if self._next_in is not None:  # a gap: finish the run before it
                out = self._tail(start)
            self._pos = start
        self._next_in = block.start + len(mono)
        self._t_ns = block.t_ns
        if self._stream is None:
            return out + self._emit(mono)
        return out + self._emit(self._stream.resample_chunk(mono, last=False))

    def _tail(self, limit: int | None = None) -> list[Block]:
        """The stream's held-back output (``last=True``), at most up to ``limit``; restarts it."""
        if self._stream is None:
            return []
        y = self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        self._stream.clear()
        if limit is not None:
            y = y[: max(0, limit - self._pos)]
        return self._emit(y)

    def flush(self) -> list[Block]:
        """End of stream: the output soxr held back (``last=True``)."""
        out = self._tail()
        self._next_in = None
        return out

    def reset(self) -> None:
        """Forget the stream (held-back output included): ready for a new one at position 0."""
        if self._stream is not None:
            self._stream.clear()
        self._pos = 0
        self._next_in = None
        self._t_ns = 0

    @property
    def delay_samples(self) -> int:
        """Input samples pushed whose output is still held back, in output samples."""
        if self._stream is None:
            return 0
        return int(self._stream.delay())
