"""Process-wide thread settings, chosen before torch starts its OpenMP pool."""
from __future__ import annotations

import os

DEFAULT_WAIT_POLICY = "PASSIVE"  # idle OpenMP workers sleep instead of spinning
BLAS_THREADS = "1"  # numpy's OpenBLAS: its idle threads spin too, and its products here are small
_user_wait_policy: str | None = None
_configured = False


def configure_threads() -> None:
    """Let idle OpenMP threads sleep (OMP_WAIT_POLICY=PASSIVE) and run numpy's BLAS on one thread
    (OPENBLAS_NUM_THREADS=1), unless the user set them; call before importing numpy or torch.

    Spinning OpenMP workers starve the pipeline's own threads (decode, dispatch) on small machines:
    with 2 cores the model ran ~25 % slower; OpenBLAS's spinning threads (the numpy front-end's mel
    product) slowed OpenVINO's network by ~40 %. The CLI calls this first; applications may too.
    """
    global _user_wait_policy, _configured
    if not _configured:
        _user_wait_policy = os.environ.get("OMP_WAIT_POLICY")
        _configured = True
    os.environ.setdefault("OMP_WAIT_POLICY", DEFAULT_WAIT_POLICY)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", BLAS_THREADS)


def user_wait_policy() -> str | None:
    """OMP_WAIT_POLICY as the user had it before `configure_threads` (None: unset)."""
    return _user_wait_policy if _configured else os.environ.get("OMP_WAIT_POLICY")
