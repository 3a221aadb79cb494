"""User extension points: a ``module:function`` (or ``module:Class``) string → the object.

Every stage that lets a user plug in their own code (rewards, embedders, backends, metrics, MBR
utilities) resolves the string here, so the grammar and the error messages are the same everywhere.
The import happens when the stage needs the object, never at CLI start.
"""

from __future__ import annotations

import importlib
from typing import Any

from in2x_cli.errors import UserError


def split_dotted(target: str, *, allow_dot: bool = False) -> tuple[str, str] | None:
    """``pkg.mod:attr`` → (``pkg.mod``, ``attr``). With ``allow_dot``, ``pkg.mod.attr`` is accepted
    too (the last dot separates the attribute). ``None`` when ``target`` names no attribute."""
    if ":" in target:
        module_name, _, attr = target.partition(":")
    elif allow_dot and "." in target:
        module_name, _, attr = target.rpartition(".")
    else:
        return None
    if not module_name or not attr:
        return None
    return module_name, attr


def import_dotted(
    target: str,
    *,
    what: str,
    error: type[Exception] = UserError,
    allow_dot: bool = False,
    callable_: bool = False,
) -> Any:
    """Import ``module:attr`` and return the attribute.

    ``what`` names the extension point in messages (``reward``, ``embedder``, ``backend``...);
    failures raise ``error`` (default ``UserError``, which the CLI turns into one line and exit 2):
    ``cannot import {what} 'x:y': No module named 'x'``, ``{what} module 'x' has no 'y'``,
    ``{what} 'x:y' is not callable`` (with ``callable_``).
    """
    parts = split_dotted(target, allow_dot=allow_dot)
    if parts is None:
        raise error(f"{what} {target!r} is not a dotted path (expected module:{'function' if callable_ else 'name'})")
    module_name, attr = parts
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise error(f"cannot import {what} {target!r}: {exc}") from None
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise error(f"{what} module {module_name!r} has no {attr!r}") from None
    if callable_ and not callable(obj):
        raise error(f"{what} {target!r} is not callable")
    return obj


__all__ = ["import_dotted", "split_dotted"]
