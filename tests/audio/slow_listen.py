"""`streamtag listen` with a network slowed down to force an overrun (a test driver, run as a script).

    python tests/audio/slow_listen.py SECONDS_PER_BATCH [listen options...]
"""
import sys
import time

from streamtag.console import run
from streamtag.models import mobilenet


def main() -> None:
    seconds = float(sys.argv[1])
    forward = mobilenet.MobileNetAT.forward

    def slow(self, mel):
        time.sleep(seconds)
        return forward(self, mel)

    mobilenet.MobileNetAT.forward = slow
    mobilenet.MobileNetAT.freezable = False  # a frozen graph or an export would trace the sleep away
    mobilenet.MobileNetAT.exportable = False
    # a cached export would run without the network class at all: the torch runtime runs the slowed one
    sys.argv = ["streamtag", "listen", *sys.argv[2:], "--runtime", "torch"]
    run()


if __name__ == "__main__":
    main()
