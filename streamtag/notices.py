"""streamtag's own warnings as the CLI shows them: one `streamtag: ...` line, without Python's file and line.

Scripts (the demos, your own) call `show_warnings_as_lines()` once; warnings of other packages keep Python's
format. `streamtag.DefaultModelFallback` (the default model is not here, the bundled one is used) then reads:

    streamtag: using the bundled mn04_as (mn10_as is not downloaded: streamtag download mn10_as)
"""
from __future__ import annotations

import sys
import warnings
from typing import Any, TextIO

_installed: dict[str, Any] = {}


def is_streamtag_warning(category: type[Warning]) -> bool:
    """Whether `category` is one of streamtag's own warning classes."""
    return category.__module__.split(".")[0] == "streamtag"


def one_line(message: Warning | str, category: type[Warning]) -> str:
    """A streamtag warning as the CLI prints it: notices as they are, other warnings marked `warning:`."""
    text = " ".join(str(message).split())
    return f"streamtag: {text}" if category.__name__ == "DefaultModelFallback" else f"streamtag: warning: {text}"


def show_warnings_as_lines(stream: TextIO | None = None) -> None:
    """From now on print streamtag's warnings as one line each on `stream` (default: standard error); others as
    before. Calling it again changes nothing."""
    if "previous" in _installed:
        return
    previous = warnings.showwarning
    _installed["previous"] = previous

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if not is_streamtag_warning(category):
            return previous(message, category, filename, lineno, file, line)
        out = file or stream or sys.stderr
        try:
            out.write(one_line(message, category) + "\n")
        except (OSError, ValueError):  # a closed stream: warnings must never raise
            pass

    warnings.showwarning = show


def restore_warnings() -> None:
    """Undo `show_warnings_as_lines` (for tests)."""
    previous = _installed.pop("previous", None)
    if previous is not None:
        warnings.showwarning = previous
