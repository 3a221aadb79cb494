"""The one exception type that reaches users as a message instead of a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input, a missing file or model, an impossible option combination.

    The CLI prints ``in2x: error: <where>: <message>`` on one line and exits with status 2.
    ``where`` is ``path`` or ``path:line`` when the problem is tied to a place in a file.
    """

    exit_code = 2

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        # Messages are one line by contract: flatten anything a library handed us.
        text = " ".join(self.message.split())
        return f"{self.where}: {text}" if self.where else text


class InputError(UserError):
    """A data file (JSONL, text, checkpoint) is malformed; ``where`` names the file and line."""
