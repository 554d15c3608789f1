"""Process-wide thread settings, chosen before torch starts its OpenMP pool."""
from __future__ import annotations

import os

DEFAULT_WAIT_POLICY = "PASSIVE"  # idle OpenMP workers sleep instead of spinning
_user_wait_policy: str | None = None
_configured = False


def configure_threads() -> None:
    """Let idle OpenMP threads sleep (OMP_WAIT_POLICY=PASSIVE) and keep numpy's OpenBLAS to one thread
    (OPENBLAS_NUM_THREADS=1), each unless the user set it; call before importing numpy and torch.

    Spinning OpenMP workers starve the pipeline's own threads (decode, dispatch) on small machines:
    with 2 cores the model ran ~25 % slower. numpy's products in the pipeline are small (one thread by design),
    but OpenBLAS's second thread still spins after start-up and after products, about 0.1 CPU-s of a
    10-minute file. The CLI calls this first; applications may too.
    """
    global _user_wait_policy, _configured
    if not _configured:
        _user_wait_policy = os.environ.get("OMP_WAIT_POLICY")
        _configured = True
    os.environ.setdefault("OMP_WAIT_POLICY", DEFAULT_WAIT_POLICY)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def user_wait_policy() -> str | None:
    """OMP_WAIT_POLICY as the user had it before `configure_threads` (None: unset)."""
    return _user_wait_policy if _configured else os.environ.get("OMP_WAIT_POLICY")
