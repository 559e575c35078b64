"""Optional parts of nsaudio (pip extras): find out, before anything starts, whether one is
installed, and say in one line how to install it when it is not.

``pip install nsaudio`` alone streams to the service and converts files; the built-in local
server needs ``nsaudio[server]`` (pocketsphinx), microphones ``nsaudio[mic]`` (sounddevice).
A command that needs a missing extra fails at once with exit status 2 and
``pip install 'nsaudio[server]'`` in its message, instead of starting a server whose every
session then fails.
"""

from __future__ import annotations

import importlib
import importlib.util

from .errors import MissingExtraError

__all__ = ["find_extra", "require_extra"]


def find_extra(module: str) -> bool:
    """True when ``module`` can be found on the path, without importing it (a few
    microseconds: the check costs nothing on the way to streaming)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a broken __spec__
        return False


def require_extra(module: str, extra: str, what: str, *, load: bool = False) -> None:
    """Raise :class:`~nsaudio.errors.MissingExtraError` unless ``module`` is installed.

    ``extra`` names the pip extra that brings it (``"server"``), ``what`` the feature that
    needs it, for the message (``"the built-in local server"``). With ``load`` the module is
    imported too, so that an installed but broken module (a shared library missing) fails
    here rather than later, at the price of the import.
    """
    install = f"pip install 'nsaudio[{extra}]'"
    if not find_extra(module):
        raise MissingExtraError(f"{what} needs {module}, which is not installed: {install}")
    if load:
        try:
            importlib.import_module(module)
        except Exception as err:  # ImportError, OSError from a native library, ...
            raise MissingExtraError(
                f"{what} needs {module}, which is installed but cannot be imported "
                f"({type(err).__name__}: {err}): reinstall it with {install}"
            ) from None
