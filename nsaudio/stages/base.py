"""The stage contract, and a chain of stages that is itself a stage.

A stage is a pure object (no threads, no I/O) with three verbs:

- ``push(x) -> list``: take one item, return what is ready (maybe nothing);
- ``flush() -> list``: end of stream, return everything still held back;
- ``reset()``: forget the stream, ready for a new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = ["Chain", "Prepares", "Resamples", "Stage"]


@runtime_checkable
class Stage(Protocol):
    """A processing step (see the module's docstring): implement these three to make your own."""

    def push(self, item: Any) -> list[Any]:
        """Take one item; return what is ready (maybe nothing)."""
        ...

    def flush(self) -> list[Any]:
        """End of stream: return everything still held back."""
        ...

    def reset(self) -> None:
        """Forget the stream: ready for a new one."""
        ...


@runtime_checkable
class Prepares(Protocol):
    """A stage with stateless per-block work that may run on the file reader's thread,
    ahead of ``push()`` (the resampler's downmix), so that both cores work."""

    def prepare(self, block: Any) -> Any: ...


@runtime_checkable
class Resamples(Protocol):
    """A stage whose output is at another rate than its input (``out_rate``, Hz)."""

    out_rate: int


class Chain:
    """``stages`` run one after the other, itself a stage; flushing one feeds its tail to
    the next. Anything in ``stages`` without ``push``, ``flush`` and ``reset`` is refused
    with ``TypeError`` here, not mid-stream."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        for stage in stages:
            if not isinstance(stage, Stage):
                raise TypeError(f"{stage!r} is not a stage: it needs push(), flush() and reset()")
        self.stages = list(stages)

    def push(self, item: Any) -> list[Any]:
        """``item`` through every stage in turn: what comes out of the last one."""
        items = [item]
        for stage in self.stages:
            items = [out for x in items for out in stage.push(x)]
            if not items:
                break
        return items

    def flush(self) -> list[Any]:
        """Each stage flushed in order, its tail pushed through the stages after it."""
        out: list[Any] = []
        for i, stage in enumerate(self.stages):
            tail = stage.flush()
            for later in self.stages[i + 1 :]:
                tail = [y for x in tail for y in later.push(x)]
            out.extend(tail)
        return out

    def reset(self) -> None:
        """Every stage reset."""
        for stage in self.stages:
            stage.reset()
