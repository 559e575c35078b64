"""The asyncio API's tests use the fault tests' server and slot-coded speech."""

from __future__ import annotations

from ..faults.conftest import fault_server, speech20

__all__ = ["fault_server", "speech20"]
