"""Live microphones through PortAudio (sounddevice): ``mic:``, ``mic:N``, ``mic:NAME``.

The device is opened at its own default sample rate and with at most two channels: PortAudio
is never asked to resample (its converters are poor and differ per host API); the
resampler downmixes and converts, exactly as it does for files.

The capture callback runs on PortAudio's real-time thread. It copies ``indata`` into a
bounded ring with the ``drop_oldest`` policy and counts PortAudio's input overflows (input
the host discarded because nobody read it in time; PortAudio does not say how much), and
does nothing else: no allocation beyond that copy and its :class:`~nsaudio.blocks.Block`,
no waiting, no logging. The consumer (``blocks()``) polls the ring, so ``stop()`` only has to
set a flag: it is safe from a signal handler and from any thread.

sounddevice is imported on first use: ``import nsaudio`` works where PortAudio is missing,
and the error that says how to install it comes only when a microphone is asked for.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..blocks import Block
from ..errors import DeviceError, InputError, RingClosed
from ..ring import MAX_DROPPED_SPANS, Ring
from .limits import check_layout
from .native_stderr import native_stderr_to_log

__all__ = ["InputDevice", "MicSource", "input_devices", "load_sounddevice", "resolve_device"]

log = logging.getLogger("nsaudio.mic")

#: More channels than this are not asked for: a mean of two is all a speech service needs,
#: and a 32-channel virtual device (PulseAudio's ALSA plugin claims 32) would waste the copy.
MAX_CHANNELS = 2
#: How often ``blocks()`` wakes to notice ``stop()`` or a stalled device, in seconds.
POLL_SECONDS = 0.05
#: A device that delivers nothing for this long is reported instead of waited on forever.
STALL_SECONDS = 5.0

_SEE_DEVICES = "see 'nsaudio devices'"


def load_sounddevice() -> Any:
    """The ``sounddevice`` module, or a ``DeviceError`` that says what to install."""
    if "sounddevice" in sys.modules and sys.modules["sounddevice"] is not None:
        return sys.modules["sounddevice"]
    try:
        with native_stderr_to_log():
            import sounddevice
    except OSError:
        # sounddevice raises OSError when it cannot find the PortAudio shared library.
        raise DeviceError(
            "PortAudio is missing: install libportaudio2 (Debian/Ubuntu), portaudio "
            "(Fedora, Homebrew) or portaudio-devel, then try again"
        ) from None
    except ImportError:
        raise DeviceError(
            "microphone support is not installed: pip install 'nsaudio[mic]'"
        ) from None
    except Exception as err:  # PortAudioError: Pa_Initialize failed (a broken ALSA config)
        raise DeviceError(
            f"PortAudio failed to start ({err}); check the sound system's configuration "
            "(ALSA_CONFIG_PATH, ~/.asoundrc)"
        ) from None
    return sounddevice


@dataclass(frozen=True)
class InputDevice:
    """One PortAudio device that can record."""

    index: int
    name: str
    hostapi: str
    max_input_channels: int
    default_samplerate: int
    default: bool = False

    @property
    def spec(self) -> str:
        return f"mic:{self.index}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "spec": self.spec}


def input_devices(sd: Any = None) -> list[InputDevice]:
    """Every device with at least one input channel, in PortAudio's order."""
    sd = sd or load_sounddevice()
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
        default_in = _default_input_index(sd)
    except sd.PortAudioError as err:
        raise DeviceError(f"cannot list audio devices: {err}") from None
    out = []
    for dev in devices:
        if dev["max_input_channels"] <= 0:
            continue
        out.append(
            InputDevice(
                index=int(dev["index"]),
                name=str(dev["name"]),
                hostapi=str(hostapis[dev["hostapi"]]["name"]),
                max_input_channels=int(dev["max_input_channels"]),
                default_samplerate=round(dev["default_samplerate"]),
                default=int(dev["index"]) == default_in,
            )
        )
    return out


def _default_input_index(sd: Any) -> int:
    try:
        index = sd.default.device[0]
        if index is None or index < 0:
            index = sd.query_devices(kind="input")["index"]
        return int(index)
    except (sd.PortAudioError, TypeError, ValueError, KeyError):
        return -1


def _quote(dev: InputDevice) -> str:
    return f"{dev.index} {dev.name!r} ({dev.hostapi})"


def resolve_device(spec: str, devices: Sequence[InputDevice]) -> InputDevice:
    """The input device ``spec`` names: "" default, "N" index, else a name or part of one.

    A name that equals a device's name (ignoring case) wins over longer names containing
    it; among several devices of the same name (one per host API), the default host API's
    (the default device's) is taken. Otherwise a name must match exactly one device.
    """
    text = spec.strip()
    if not devices:
        raise DeviceError(
            "no input device found: connect or enable a microphone "
            "(on a headless machine, start PulseAudio with a null sink); " + _SEE_DEVICES
        )
    if not text:
        for dev in devices:
            if dev.default:
                return dev
        raise DeviceError(
            "there is no default input device: choose one with mic:N or mic:NAME; " + _SEE_DEVICES
        )
    if text.lstrip("-").isdigit():
        index = int(text)
        for dev in devices:
            if dev.index == index:
                return dev
        known = ", ".join(str(d.index) for d in devices)
        raise DeviceError(
            f"mic:{text}: no input device has index {index} (inputs: {known}); " + _SEE_DEVICES
        )
    needle = text.casefold()
    exact = [d for d in devices if d.name.casefold() == needle]
    matches = exact or [d for d in devices if needle in d.name.casefold()]
    if len(matches) > 1 and len({d.name.casefold() for d in matches}) == 1:
        defaults = [d for d in matches if d.default]
        # Same device under several host APIs: the default's wins, else the first listed.
        matches = defaults or matches[:1]
    if len(matches) == 1:
        return matches[0]
    if matches:
        listed = "; ".join(_quote(d) for d in matches[:6])
        more = f" and {len(matches) - 6} more" if len(matches) > 6 else ""
        raise DeviceError(
            f"mic:{text} matches {len(matches)} input devices: {listed}{more}; "
            "use mic:N with one of these indices, or more of the name"
        )
    names = [d.name for d in devices]
    close = difflib.get_close_matches(text, names, n=3, cutoff=0.5) or difflib.get_close_matches(
        needle, [n.casefold() for n in names], n=3, cutoff=0.5
    )
    if close:
        hint = "did you mean " + " or ".join(repr(c) for c in close) + "?"
    else:
        shown = ", ".join(repr(n) for n in names[:6]) + (", ..." if len(names) > 6 else "")
        hint = f"inputs are {shown}"
    raise DeviceError(f"mic:{text}: no input device matches {text!r}: {hint} ({_SEE_DEVICES})")


class MicSource:
    """A live input device as float32 blocks of shape ``(frames, channels)``.

    ``spec``: "" the default input, "N" a device index, anything else a case-insensitive part
    of a device name (see :func:`resolve_device`). ``block_ms``: the capture callback's block
    (10 ms keeps latency low). ``ring_seconds``: how much audio may wait for the consumer
    before the oldest is dropped. ``duration``: stop after this many seconds of audio,
    counted in frames, not wall time. ``rate`` and ``channels`` override the device's
    default sample rate and the channel count (at most the device's). ``latency``: PortAudio's
    input buffer (seconds, or "low"/"high"), by default three blocks and at least 30 ms.
    ``stall_seconds``: a device that delivers nothing for this long is reported as failed
    (``DeviceError``) instead of waited for; None waits for ever.

    ``blocks()`` starts capture if ``start()`` has not, yields until ``stop()``, the duration,
    or a device failure (``DeviceError``), and closes the stream. Positions count frames from
    the start of capture and are contiguous; ``t_ns`` is the monotonic time of the callback
    that delivered the block. (PortAudio's ADC timestamps are on another clock and, through
    ALSA and PulseAudio, were 0.7 s off during the first callbacks: not worth mapping.)
    """

    live = True

    def __init__(
        self,
        spec: str = "",
        *,
        block_ms: float = 10,
        ring_seconds: float = 2.0,
        duration: float | None = None,
        rate: int | None = None,
        channels: int | None = None,
        latency: str | float | None = None,
        stall_seconds: float | None = STALL_SECONDS,
    ) -> None:
        if not 1 <= block_ms <= 500:
            raise InputError(f"capture block must be 1 to 500 ms, not {block_ms}")
        if not ring_seconds > 0:
            raise InputError(f"capture ring must hold a positive duration, not {ring_seconds} s")
        if duration is not None and not duration > 0:
            raise InputError(f"duration must be a positive number of seconds, not {duration}")
        sd = load_sounddevice()
        self._sd = sd
        self.device = resolve_device(spec, input_devices(sd))
        dev = self.device
        self.name = f"mic:{dev.index} {dev.name}"
        self.rate: int = int(rate) if rate is not None else dev.default_samplerate
        max_ch = dev.max_input_channels
        if channels is not None and not 1 <= channels <= max_ch:
            raise DeviceError(
                f"{self.name}: has {max_ch} input channel(s), cannot record {channels}"
            )
        self.channels: int = channels or min(max_ch, MAX_CHANNELS)
        check_layout(self.name, self.rate, self.channels)
        self.format = f"{dev.hostapi}/float32"
        self.block_frames = max(1, round(self.rate * block_ms / 1000))
        # Three blocks of headroom before PortAudio overflows, and no more: a larger
        # buffer makes ALSA deliver blocks in bursts (measured: pairs, 27 ms apart).
        self.latency = latency if latency is not None else max(0.03, 3 * block_ms / 1000)
        self.stall_seconds = stall_seconds
        self.limit_frames = None if duration is None else max(1, round(duration * self.rate))
        try:
            # Opens the device once: a busy or unsuitable one fails here, before any capture,
            # and without the lines ALSA prints on the way.
            with native_stderr_to_log():
                sd.check_input_settings(
                    device=dev.index, channels=self.channels, dtype="float32", samplerate=self.rate
                )
        except (sd.PortAudioError, ValueError) as err:
            raise self._open_error(err) from None
        self._ring: Ring[Block] = Ring.for_seconds(ring_seconds, self.rate, "drop_oldest")
        self._stream: Any = None
        self._stop_requested = False
        self.captured_frames = 0
        self.overflows = 0
        #: Overflows after the first sample (input lost inside the stream), and where.
        self.stream_overflows = 0
        self.overflow_at: list[int] = []
        self._last_ns = 0

    def _open_error(self, err: Exception) -> DeviceError:
        msg = str(err).strip().rstrip(".") or type(err).__name__
        return DeviceError(
            f"{self.name}: cannot record at {self.rate} Hz, {self.channels} ch ({msg}); "
            "close other programs using it, or choose another device with mic:N "
            f"({_SEE_DEVICES})"
        )

    # -- the real-time side -----------------------------------------------------------

    def _callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        now = time.monotonic_ns()
        self._last_ns = now
        start = self.captured_frames
        if status.input_overflow:
            self.overflows += 1
            # Input discarded just before this callback's first sample. Before the stream's
            # first sample, that is audio from before the stream began: none of it is lost.
            if start:
                self.stream_overflows += 1
                if len(self.overflow_at) < MAX_DROPPED_SPANS:
                    self.overflow_at.append(start)
        n = frames
        limit = self.limit_frames
        if limit is not None and start + n > limit:
            n = limit - start
        if n > 0:
            data = indata.copy() if n == frames else indata[:n].copy()
            try:
                self._ring.put(Block(data, start, self.rate, now))
            except RingClosed:  # the consumer is gone
                raise self._sd.CallbackAbort from None
            self.captured_frames = start + n
        if self._stop_requested or (limit is not None and start + n >= limit):
            raise self._sd.CallbackStop

    def _on_finished(self) -> None:
        self._ring.close()

    # -- the consumer side --------------------------------------------------------------

    def start(self) -> None:
        """Open the device and start capturing into the ring (``blocks()`` does it too)."""
        if self._stream is not None or self._stop_requested:
            return
        sd = self._sd
        try:
            stream = sd.InputStream(
                device=self.device.index,
                samplerate=self.rate,
                channels=self.channels,
                dtype="float32",
                blocksize=self.block_frames,
                latency=self.latency,
                callback=self._callback,
                finished_callback=self._on_finished,
            )
        except (sd.PortAudioError, ValueError) as err:
            raise self._open_error(err) from None
        self._last_ns = time.monotonic_ns()
        try:
            stream.start()
        except sd.PortAudioError as err:
            stream.close(ignore_errors=True)
            raise self._open_error(err) from None
        self._stream = stream
        log.debug(
            "%s: %d Hz, %d ch, %d-frame blocks, input latency %.1f ms",
            self.name,
            self.rate,
            self.channels,
            self.block_frames,
            1000 * stream.latency,
        )

    def stop(self) -> None:
        """End capture; ``blocks()`` yields what is queued, then returns.

        Only sets a flag, so it is safe from a signal handler or any thread.
        """
        self._stop_requested = True

    def __iter__(self) -> Iterator[Block]:
        return self.blocks()

    def blocks(self) -> Iterator[Block]:
        """Captured blocks as they come (see the class docstring for when they end)."""
        self.start()
        ring = self._ring
        unexpected_end = False
        try:
            while True:
                block = ring.get(timeout=POLL_SECONDS)
                if block is not None:
                    yield block
                    continue
                if ring.at_end:
                    unexpected_end = not self._stop_requested and not self._reached_limit()
                    break
                if self._stop_requested:
                    self._halt()  # no more callbacks: the ring closes and drains
                    continue
                stalled = (time.monotonic_ns() - self._last_ns) / 1e9
                if self.stall_seconds is not None and stalled > self.stall_seconds:
                    raise DeviceError(
                        f"{self.name}: no audio from the device for {stalled:.0f} s; "
                        "check that it is still connected and not used exclusively elsewhere"
                    )
        finally:
            self.close()
        if unexpected_end:
            raise DeviceError(
                f"{self.name}: the device stopped delivering audio after "
                f"{self.captured_frames / self.rate:.2f} s; check that it is still connected"
            )

    def _reached_limit(self) -> bool:
        return self.limit_frames is not None and self.captured_frames >= self.limit_frames

    def _halt(self) -> None:
        stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.stop()
        self._ring.close()

    def close(self) -> None:
        """Stop the device and release it; idempotent."""
        self._stop_requested = True
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.abort(ignore_errors=True)
            with contextlib.suppress(Exception):
                stream.close(ignore_errors=True)
        self._ring.close()

    def __enter__(self) -> MicSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def dropped(self) -> int:
        """Blocks the ring discarded because the consumer fell behind."""
        return self._ring.dropped

    @property
    def dropped_samples(self) -> int:
        """Sample frames (one per channel) the ring discarded because the consumer fell behind."""
        return self._ring.dropped_samples

    def device_overflows(self) -> tuple[int, list[int]]:
        """How many times the device discarded input inside the stream (PortAudio's input
        overflow after the first sample), and the positions of the first ones."""
        return self.stream_overflows, list(self.overflow_at)

    def stats(self) -> dict[str, Any]:
        """What the capture did, for reports: the device, counts and the ring's high water."""
        return {
            "device": self.device.as_dict(),
            "rate": self.rate,
            "channels": self.channels,
            "block_frames": self.block_frames,
            "captured_frames": self.captured_frames,
            "seconds": self.captured_frames / self.rate,
            "overflows": self.overflows,
            "stream_overflows": self.stream_overflows,
            "dropped": self.dropped,
            "dropped_samples": self.dropped_samples,
            "ring_capacity": self._ring.capacity,
            "ring_high_water": self._ring.high_water,
        }

    def __repr__(self) -> str:
        return (
            f"MicSource({self.name!r}, rate={self.rate}, channels={self.channels}, "
            f"block_frames={self.block_frames})"
        )
