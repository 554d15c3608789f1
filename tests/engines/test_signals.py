"""Interrupts under `interrupts_from_signals`: one that lands where Python only reports exceptions still stops."""
import signal
import time
import weakref

import pytest

from streamtag.engines.signals import exit_code, interrupts_from_signals
from streamtag.errors import SignalInterrupt


class Anything:
    pass


def swallowed(interrupt: KeyboardInterrupt) -> None:
    """Raise `interrupt` inside a weakref callback, where Python reports it ("Exception ignored") and goes on."""
    def callback(_ref):
        raise interrupt
    thing = Anything()
    ref = weakref.ref(thing, callback)  # the callback runs when `thing` goes, while the ref lives
    del thing
    assert ref() is None


def wait_for_interrupt() -> None:
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize("interrupt, code", [(KeyboardInterrupt(), 130), (SignalInterrupt(signal.SIGTERM), 143)])
def test_an_interrupt_swallowed_by_a_weakref_callback_is_raised_again(interrupt, code):
    with pytest.raises(KeyboardInterrupt) as caught:
        with interrupts_from_signals():
            swallowed(interrupt)
            wait_for_interrupt()
    assert exit_code(caught.value) == code


def test_other_unraisable_errors_are_still_reported(monkeypatch):
    import sys
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(type(u.exc_value)))
    with interrupts_from_signals():
        swallowed(ValueError("not an interrupt"))  # type: ignore[arg-type]
    assert seen == [ValueError]
