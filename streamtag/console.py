"""The `streamtag` console script: threads configured, then the command line."""
from __future__ import annotations

import sys

from .errors import DependencyError
from .threads import configure_threads


def run() -> None:
    """Entry point: the CLI; one `streamtag: error:` line and exit 1 when torch is needed and cannot load.

    Torch is imported only by what needs it (a run whose OpenVINO export is cached does not).
    """
    configure_threads()
    try:
        from .cli import main
    except DependencyError as e:
        print(f"streamtag: error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    main()
