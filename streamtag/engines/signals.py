"""Termination signals as interrupts: SIGTERM and SIGHUP stop a run the way Ctrl-C does."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

from ..errors import SignalInterrupt

SIGNALS = tuple(signal.Signals[name] for name in ("SIGTERM", "SIGHUP") if name in signal.Signals.__members__)


@contextmanager
def interrupts_from_signals() -> Iterator[None]:
    """Within the block, the first SIGTERM or SIGHUP raises `SignalInterrupt` in the main thread (later ones
    are ignored while the run winds down); elsewhere, or outside the main thread, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = threading.Event()

    def handler(signum, frame) -> None:
        if not raised.is_set():
            raised.set()
            raise SignalInterrupt(signum)

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """The shell's exit status for a run ended by this interrupt: 128 + the signal (130 for Ctrl-C)."""
    return 128 + (interrupt.signum if isinstance(interrupt, SignalInterrupt) else signal.SIGINT)


@contextmanager
def signal_handlers_kept() -> Iterator[None]:
    """Restore SIGTERM/SIGHUP handling after the block (Ray's `init` installs its own, which exits at once)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.getsignal(s) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in saved.items():
            if handler is not None:
                signal.signal(s, handler)
