"""The stage contract, and a chain of stages that is itself a stage.

A stage is a pure object (no threads, no I/O) with three verbs:

- ``push(x) -> list``: take one item, return what is ready (maybe nothing);
- ``flush() -> list``: end of stream, return everything still held back;
- ``reset()``: forget the stream, ready for a new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = ["Chain", "Stage"]


@runtime_checkable
class Stage(Protocol):
    """A processing step (see the module's docstring): implement these three to make your own."""

    def push(self, item: Any) -> list[Any]: ...

    def flush(self) -> list[Any]: ...

    def reset(self) -> None: ...


class Chain:
    """Stages run one after the other; flushing one feeds its tail to the next."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        for stage in stages:
            if not isinstance(stage, Stage):
                raise TypeError(f"{stage!r} is not a stage: it needs push(), flush() and reset()")
        self.stages = list(stages)

    def push(self, item: Any) -> list[Any]:
        items = [item]
        for stage in self.stages:
            items = [out for x in items for out in stage.push(x)]
            if not items:
                break
        return items

    def flush(self) -> list[Any]:
        out: list[Any] = []
        for i, stage in enumerate(self.stages):
            tail = stage.flush()
            for later in self.stages[i + 1 :]:
                tail = [y for x in tail for y in later.push(x)]
            out.extend(tail)
        return out

    def reset(self) -> None:
        for stage in self.stages:
            stage.reset()
