"""The loader's log ("bpfglobals.loader"): what it decided on the way (`load -v` shows it).

`logging` is imported on the first message, not at start-up: it brings traceback, string,
threading and weakref with it, a cost every `bpfglobals load` would pay though most objects
make the loader say nothing.
"""

from __future__ import annotations

import functools

NAME = "bpfglobals.loader"


@functools.cache
def _logger():
    import logging

    return logging.getLogger(NAME)


def info(msg: str, *args: object) -> None:
    _logger().info(msg, *args)


def warning(msg: str, *args: object) -> None:
    _logger().warning(msg, *args)
