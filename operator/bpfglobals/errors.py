"""The project's error hierarchy.

Every error a user can cause derives from `BpfGlobalsError` and carries a message that says
what, where and why. The CLI maps these to exit code 2 with a one-line message; anything else
is a bug (exit code 1, traceback).
"""

from __future__ import annotations


class BpfGlobalsError(Exception):
    """Base class of every error that is the user's input, not our bug."""


class ElfError(BpfGlobalsError):
    """The object file is malformed or uses something we do not support."""


class BtfError(ElfError):
    """The .BTF or .BTF.ext section is malformed."""


class ValueEncodingError(BpfGlobalsError):
    """A user-supplied value does not fit the variable's BTF type (or names no variable)."""
