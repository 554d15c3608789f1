"""Termination signals as interrupts: SIGTERM and SIGHUP stop a run the way Ctrl-C does."""
from __future__ import annotations

import _thread
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

from ..errors import SignalInterrupt

REDELIVERY_DELAY_S = 0.01  # an interrupt swallowed by a finaliser is sent again after this
SIGNALS = tuple(signal.Signals[name] for name in ("SIGTERM", "SIGHUP") if name in signal.Signals.__members__)


@contextmanager
def interrupts_from_signals() -> Iterator[None]:
    """Within the block, the first SIGTERM or SIGHUP raises `SignalInterrupt` in the main thread (later ones
    are ignored while the run winds down); elsewhere, or outside the main thread, nothing changes.

    An interrupt (these or Ctrl-C's KeyboardInterrupt) that lands in code whose exceptions Python only
    reports, such as a weakref callback or a finaliser run by the garbage collector ("Exception ignored
    in ..."), is delivered again to the main thread, so the run still stops.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = threading.Event()

    def handler(signum, frame) -> None:
        if not raised.is_set():
            raised.set()
            raise SignalInterrupt(signum)

    report_unraisable = sys.unraisablehook

    def deliver_again(unraisable) -> None:
        interrupt = unraisable.exc_value
        if not isinstance(interrupt, KeyboardInterrupt):
            report_unraisable(unraisable)
            return
        raised.clear()  # swallowed: the handler raises it once more, from outside this hook (where it would
        # be swallowed again: if it lands in such code once more, this hook sends it again)
        signum = interrupt.signum if isinstance(interrupt, SignalInterrupt) else signal.SIGINT
        threading.Timer(REDELIVERY_DELAY_S, _thread.interrupt_main, (signum,)).start()

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    sys.unraisablehook = deliver_again
    try:
        yield
    finally:
        sys.unraisablehook = report_unraisable
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
