"""The `streamtag` console script: threads configured, torch checked, then the command line."""
from __future__ import annotations

import sys

from .errors import DependencyError
from .threads import configure_threads


def run() -> None:
    """Entry point: one `streamtag: error:` line and exit 1 when torch cannot load, else the CLI."""
    configure_threads()
    try:
        from .deps import require_torch
        require_torch()
        from .cli import main
    except DependencyError as e:
        print(f"streamtag: error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    main()
