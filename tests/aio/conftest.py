"""The asyncio API's tests use the fault tests' slot-coded speech (and the stand-in service,
``fault_server``, from the tests' own conftest)."""

from __future__ import annotations

from ..faults.conftest import speech20

__all__ = ["speech20"]
