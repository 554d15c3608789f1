"""What a run will allocate, checked against what the machine can hold before anything is allocated."""
from __future__ import annotations

import os
import resource

from .errors import ConfigError
from .windows import WindowSpec

# bytes a window's samples become inside the model per float32 input sample (front-end frames and the
# widest activations of the CNNs, with room to spare; measured: exporting mn04_as for a 300 s window peaks
# 635 MB above a 60 s one, 83 bytes per added sample); the transformers' depend on their frame count
WORKING_SET_FACTOR = 24
# a run may plan to take this share of the memory available when it starts (STREAMTAG_MEMORY_LIMIT, in bytes
# or with a K/M/G suffix, sets the budget instead): one process must not be able to take the machine
BUDGET_SHARE = 0.25
LIMIT_ENV = "STREAMTAG_MEMORY_LIMIT"
SAMPLE_BYTES = 4


def ring_samples(spec: WindowSpec, batch_size: int, ring_seconds: float | None, live: bool) -> int:
    """The ring buffer's capacity: files need one batch of windows plus a block of slack (less would
    deadlock); live sources keep `ring_seconds` of audio when given (at least one window and hop).
    With hop > window a batch spans its gaps, but the ring never holds the gap after its last window."""
    batch_span = spec.window + (batch_size - 1) * spec.hop
    needed = batch_span + (spec.hop if spec.hop <= spec.window else 0) + spec.rate
    if ring_seconds is not None:
        wanted = int(ring_seconds * spec.rate)
        needed = max(wanted, spec.window + spec.hop) if live else max(needed, wanted)
    return needed


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _address_space_left() -> int | None:
    """Room under this process's address-space limit (`ulimit -v`), if one is set."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return max(0, soft - int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return soft


def _configured_limit() -> int | None:
    text = os.environ.get(LIMIT_ENV, "").strip().upper()
    if not text:
        return None
    scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1], 1)
    try:
        value = float(text[:-1] if scale > 1 else text) * scale
    except ValueError:
        raise ConfigError(f"{LIMIT_ENV} must be a size such as 4G or 512M, got {text!r}") from None
    if not value > 0:
        raise ConfigError(f"{LIMIT_ENV} must be positive, got {text!r}")
    return int(value)


def memory_limit() -> int | None:
    """Bytes a run may plan to allocate: STREAMTAG_MEMORY_LIMIT when set, else a quarter of the machine's available
    memory; never more than the room left under `ulimit -v`."""
    configured = _configured_limit()
    available = _meminfo_available()
    budget = configured if configured is not None else None if available is None else int(available * BUDGET_SHARE)
    limits = [m for m in (budget, _address_space_left()) if m is not None]
    return min(limits) if limits else None


def _size(n: float) -> str:
    gb = n / 2**30
    return f"{gb:.3g} GB" if gb >= 1e4 else f"{gb:.1f} GB" if gb >= 1 else f"{n / 2**20:.0f} MB"


def check_run_memory(spec: WindowSpec, batch_size: int, ring_seconds: float | None, limit: int | None = None) -> None:
    """ConfigError naming the setting when one batch of windows and the ring buffer would not fit in `limit`
    (default: `memory_limit()`), before anything is allocated."""
    limit = memory_limit() if limit is None else limit
    if limit is None:
        return
    batch = batch_size * spec.window * SAMPLE_BYTES * WORKING_SET_FACTOR
    ring = max(ring_samples(spec, batch_size, ring_seconds, live) for live in (False, True)) * SAMPLE_BYTES
    if batch + ring <= limit:
        return
    if ring > batch:
        what = (f"a buffer of {ring_seconds:g} s" if ring_seconds is not None and
                ring_seconds * spec.rate * SAMPLE_BYTES >= ring / 2 else
                f"a batch of {batch_size} windows every {spec.hop_s:g} s")
    else:
        what = (f"a window of {spec.window_s:g} s" if batch_size == 1 else
                f"{batch_size} windows of {spec.window_s:g} s per batch")
    raise ConfigError(f"{what} needs about {_size(batch + ring)} of memory; {_size(limit)} is available to it "
                      f"(use a shorter window, a smaller batch size or buffer, or set {LIMIT_ENV})")


def check_window_memory(spec: WindowSpec, ring_seconds: float | None, limit: int | None = None) -> None:
    """`check_run_memory` for one window at a time: what building the model for this window and running any input
    through it needs at least, checked before a network is built or exported."""
    check_run_memory(spec, 1, ring_seconds, limit)


__all__ = ["BUDGET_SHARE", "LIMIT_ENV", "check_run_memory", "check_window_memory", "memory_limit", "ring_samples"]
