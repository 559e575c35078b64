"""Silero VAD through onnxruntime, without torch: a speech probability for every 32 ms.

The model (``data/silero_vad.onnx``, 2.3 MB, MIT, see ``data/README.md``) ships with nsaudio,
so nothing is downloaded; onnxruntime comes with the ``vad`` extra
(``pip install 'nsaudio[vad]'``). It takes windows of 512 samples at 16 kHz or 256 at 8 kHz,
each preceded by the last 64 (32) samples of the window before it (its *context*), and a
recurrent state of shape ``(2, streams, 128)``; it returns one speech probability a window
and the next state. :class:`SileroDetector` carries the state, the context and the samples
short of a whole window from one frame to the next exactly as the reference implementation
does (``OnnxWrapper`` in silero-vad's ``utils_vad.py``, 6.2.3: zeros to start, the context
taken from the end of the last input), so its probabilities are the reference's for any way
the stream is cut into frames; ``tests/detectors/test_silero_reference.py`` compares them.

A frame's score is the highest probability of the windows that ended in it; a frame in which
no window ended (a 20 ms frame, now and then) has the newest window's probability. So a
decision lags the audio by at most one window (32 ms) plus what the frame itself holds, and
the model's state takes a few windows to rise at an onset (``onset_lag_ms``, which the gate
adds to its pre-roll).

Frames at other rates are resampled for the detector (soxr, to 16 kHz from above 16 kHz, to
8 kHz below it); the frames themselves are untouched.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt
import soxr

from ..errors import DetectorError, InputError

__all__ = ["MODEL_PATH", "WINDOWS", "Batcher", "SileroDetector", "SileroModel", "Windows"]

MODEL_PATH = Path(__file__).resolve().parent / "data" / "silero_vad.onnx"

#: The model's rates: samples a window, context samples before it.
WINDOWS = {16000: (512, 64), 8000: (256, 32)}
STATE_ROWS, STATE_WIDTH = 2, 128
_INSTALL = "pip install 'nsaudio[vad]'"
_SCALE = np.float32(1 / 32768)  # int16 full scale to the model's float range

Float32 = npt.NDArray[np.float32]


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise DetectorError(
            f"the Silero speech detector needs onnxruntime, which is not installed: {_INSTALL}"
        ) from None
    return onnxruntime


class SileroModel:
    """One onnxruntime session of the Silero VAD model, shared by all the streams of a process.

    ``path``: the ONNX file (default: the bundled one). The session runs on one thread, as
    the reference sets it up; different streams may call :meth:`run` from different threads
    at once (onnxruntime sessions are thread-safe, and it releases the GIL while it runs).
    Raises :class:`~nsaudio.errors.DetectorError` when onnxruntime is missing, or when the
    file is missing, damaged or not a Silero VAD model with the v5/v6 interface.
    """

    _shared: ClassVar[dict[Path, SileroModel]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: str | Path | None = None) -> None:
        ort = _onnxruntime()
        self.path = Path(path) if path is not None else MODEL_PATH
        if not self.path.is_file():
            raise DetectorError(
                f"the Silero VAD model {self.path} is missing"
                + (f": reinstall nsaudio ({_INSTALL})" if path is None else "")
            )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 4  # fatal only: its own messages would break our one line
        try:
            self._session = ort.InferenceSession(
                str(self.path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own types, unrelated to ours
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise DetectorError(
                f"the Silero VAD model {self.path} cannot be loaded (damaged, or not ONNX): "
                f"{reason[:200]}"
            ) from None
        self._check()

    @classmethod
    def shared(cls, path: str | Path | None = None) -> SileroModel:
        """The process's one model for ``path`` (loaded on first use)."""
        key = (Path(path) if path is not None else MODEL_PATH).resolve()
        with cls._shared_lock:
            model = cls._shared.get(key)
            if model is None:
                model = cls._shared[key] = cls(path)
            return model

    def _check(self) -> None:
        """Refuse an ONNX file that is not Silero VAD with the interface this module speaks."""
        names = sorted(i.name for i in self._session.get_inputs())
        if names != ["input", "sr", "state"] or len(self._session.get_outputs()) != 2:
            raise DetectorError(
                f"{self.path} is not a Silero VAD v5/v6 model: its inputs are {', '.join(names)}"
            )
        try:
            for rate, (window, context) in WINDOWS.items():
                x = np.zeros((1, context + window), np.float32)
                probs, state = self.run(x, np.zeros((STATE_ROWS, 1, STATE_WIDTH), np.float32), rate)
                if probs.shape != (1,) or state.shape != (STATE_ROWS, 1, STATE_WIDTH):
                    raise ValueError(f"outputs of shapes {probs.shape} and {state.shape}")
        except Exception as err:
            raise DetectorError(
                f"{self.path} is not a Silero VAD v5/v6 model: {str(err).splitlines()[0][:200]}"
            ) from None

    def run(self, x: Float32, state: Float32, rate: int) -> tuple[Float32, Float32]:
        """One step for ``B`` streams: ``x`` ``(B, context + window)``, ``state``
        ``(2, B, 128)``; their probabilities ``(B,)`` and next state ``(2, B, 128)``."""
        probs, new_state = self._session.run(
            None, {"input": x, "state": state, "sr": np.array(rate, dtype=np.int64)}
        )
        return probs[:, 0], new_state


@dataclass(eq=False)
class Windows:
    """One stream's whole windows from one call of ``scores``, ready for the model.

    ``inputs`` is ``(k, context + window)``, the rows in stream order; the model's answers go
    into ``probs`` (``(k,)``), and the state is the detector's, carried from one to the next.
    """

    detector: SileroDetector
    rate: int
    inputs: Float32
    ends: list[int]  # windows ended by the end of each frame (cumulative)
    probs: Float32 = field(init=False)
    count: int = field(init=False)  # windows

    def __post_init__(self) -> None:
        self.count = len(self.inputs)
        self.probs = np.zeros(self.count, np.float32)


class Batcher(Protocol):
    """What detectors need of a batcher (:class:`~nsaudio.detectors.SileroBatcher`): its
    model; ``submit(job)``, which returns once ``job``'s probabilities are in; and
    ``run(jobs)``, which scores several streams' jobs together now."""

    model: SileroModel

    def submit(self, job: Windows) -> None: ...

    def run(self, jobs: Sequence[Windows]) -> None: ...


class SileroDetector:
    """Silero VAD for one stream: :class:`~nsaudio.detectors.SpeechDetector`'s ``scores``
    and ``reset`` (see the module's docstring for what a frame's score is).

    ``threshold``: the probability from which a frame is speech (0.5 is Silero's own default;
    above 1 nothing is). ``model_path``: an ONNX file instead of the bundled model.
    ``batcher``: a :class:`~nsaudio.detectors.SileroBatcher` shared with other streams,
    which scores their windows together (then its model is used). ``probability`` is the
    newest window's, ``windows`` how many were scored.
    """

    name = "silero"
    #: Measured here on flite sentences in noise: Silero's first speech frame comes 60-120 ms
    #: after the energy detector's with 20 ms frames, up to 200 ms with 100 ms frames (where
    #: energy hears the frame the speech starts in, Silero the next or the one after).
    onset_lag_ms = 150.0

    def __init__(
        self,
        threshold: float = 0.5,
        *,
        model_path: str | Path | None = None,
        batcher: Batcher | None = None,
    ) -> None:
        if not (math.isfinite(threshold) and threshold > 0):
            raise InputError(f"speech threshold must be a positive number, not {threshold}")
        if batcher is not None and model_path is not None:
            raise InputError("give a model or a batcher (which has its model), not both")
        self.threshold = threshold
        self.batcher = batcher
        self.model = batcher.model if batcher is not None else SileroModel.shared(model_path)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: zero state and context, as the reference starts."""
        self._rate = 0  # of the frames; 0 before the first
        self._model_rate = 0
        self._resampler: soxr.ResampleStream | None = None
        self._carry: Float32 = np.zeros(0, np.float32)
        self._context: Float32 = np.zeros(0, np.float32)
        self.state: Float32 = np.zeros((STATE_ROWS, STATE_WIDTH), np.float32)
        self.probability = 0.0
        self.windows = 0

    def scores(self, frames: npt.NDArray[np.int16], rate: int) -> list[float]:
        """Score consecutive frames (rows of int16 at ``rate``); see the module's docstring."""
        job = self.prepare(frames, rate)
        if job.count:
            if self.batcher is not None:
                self.batcher.submit(job)
            else:
                self.step(job)
        return self.finish(job)

    def prepare(self, frames: npt.NDArray[np.int16], rate: int) -> Windows:
        """The model's inputs for these frames: the windows they complete, each with its
        context; the samples short of a window wait for the next frames."""
        if frames.ndim != 2:
            raise TypeError(f"expected frames as a 2-D array, got shape {frames.shape}")
        if rate != self._rate:
            self._start(rate)
        window, context = WINDOWS[self._model_rate]
        carry = self._carry
        if self._resampler is None:
            rows, width = frames.shape
            audio = np.empty(len(carry) + frames.size, np.float32)
            audio[: len(carry)] = carry
            np.multiply(frames.reshape(-1), _SCALE, out=audio[len(carry) :])
            ends = [(len(carry) + width * (i + 1)) // window for i in range(rows)]
        else:
            pieces = [self._resampler.resample_chunk(row * _SCALE) for row in frames]
            audio = np.concatenate([carry, *pieces])
            done, ends = len(carry), []
            for piece in pieces:
                done += len(piece)
                ends.append(done // window)
        k = len(audio) // window
        inputs = np.empty((k, context + window), np.float32)
        if k:
            whole = audio[: k * window].reshape(k, window)
            inputs[:, context:] = whole
            inputs[0, :context] = self._context
            inputs[1:, :context] = whole[:-1, -context:]
            self._context = whole[-1, -context:].copy()
        self._carry = audio[k * window :].copy()
        return Windows(self, self._model_rate, inputs, ends)

    def step(self, job: Windows) -> None:
        """Run the model over ``job``'s windows one after the other, on this thread."""
        state = self.state[:, None, :]
        for i in range(job.count):
            probs, state = self.model.run(job.inputs[i : i + 1], state, job.rate)
            job.probs[i] = probs[0]
        self.state = state[:, 0, :]

    def finish(self, job: Windows) -> list[float]:
        """Each frame's score from ``job``'s probabilities (filled by :meth:`step` or a batcher)."""
        self.windows += job.count
        if len(job.ends) == 1:  # the gate's case: one frame
            if job.count:
                self.probability = float(job.probs.max())
            return [self.probability]
        out = []
        done = 0
        for end in job.ends:
            if end > done:
                self.probability = float(job.probs[done:end].max())
                done = end
            out.append(self.probability)
        return out

    def _start(self, rate: int) -> None:
        """A stream (or a new rate) starts: fresh state, as the reference does on a new rate."""
        if rate <= 0:
            raise InputError(f"rate must be positive, not {rate}")
        self.reset()
        self._rate = rate
        if rate in WINDOWS:
            self._model_rate = rate
        else:
            self._model_rate = 16000 if rate > 16000 else 8000
            # LQ: the detector needs no fidelity, and HQ holds back more of each frame.
            self._resampler = soxr.ResampleStream(
                rate, self._model_rate, 1, dtype="float32", quality="LQ"
            )
        self._context = np.zeros(WINDOWS[self._model_rate][1], np.float32)
