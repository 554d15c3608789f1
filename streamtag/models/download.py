"""`streamtag download`: fetch official weights into $STREAMTAG_HOME, checked against the registry's sha256.

A download goes to a temporary file beside its destination and is renamed into place only when complete and
verified (`weights.download`), so an interrupted or failed download leaves nothing behind. Offline, the error is
one line with the URL and the path to save the file as.
"""
from __future__ import annotations

import os
import urllib.error
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, WeightsError, WeightsUnavailableError
from .catalog import get_spec
from .spec import ModelSpec
from .weights import DOWNLOAD_TIMEOUT_S, Progress, bundled_path, download, download_url, streamtag_home, verify_sha256

STATUSES = ("downloaded", "present", "bundled")


@dataclass(frozen=True)
class Fetched:
    """Where a model's weights are now, and whether this call downloaded them."""

    name: str
    path: Path
    status: str  # "downloaded" | "present" (already in $STREAMTAG_HOME, verified) | "bundled" (in the package)
    size: int  # bytes

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ConfigError(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")


def weights_destination(spec: ModelSpec) -> Path:
    """Where the weights of `spec` are kept: $STREAMTAG_HOME/<file name as released>."""
    return streamtag_home() / spec.file_name


def _already_here(spec: ModelSpec, force: bool) -> Fetched | None:
    """The verified copy already on this machine (None: download it). A cached copy with the wrong sha256 is
    replaced, not refused: downloading again is the fix."""
    dest = weights_destination(spec)
    if not force and dest.is_file():
        try:
            verify_sha256(dest, spec.sha256, spec.name)
            return Fetched(spec.name, dest, "present", dest.stat().st_size)
        except WeightsError:
            pass
    bundled = bundled_path(spec.file_name)
    if bundled is not None and not dest.is_file():
        return Fetched(spec.name, bundled, "bundled", bundled.stat().st_size)
    return None


def fetch_weights(model: str | ModelSpec, progress: Progress | None = None, force: bool = False,
                  timeout: float = DOWNLOAD_TIMEOUT_S) -> Fetched:
    """Download the official weights of `model` into $STREAMTAG_HOME (sha256-checked, atomic), unless a verified
    copy is already there (or bundled); `force` downloads again. `progress(done, total)` follows the bytes.

    Raises `WeightsUnavailableError` (one line with the URL and the path to save the file as) when the file cannot
    be fetched, and `WeightsError` when what arrived is incomplete or not the published file."""
    spec = get_spec(model) if isinstance(model, str) else model
    here = _already_here(spec, force)
    if here is not None:
        return here
    dest = weights_destination(spec)
    if spec.page is not None and not os.environ.get("STREAMTAG_DOWNLOAD_BASE"):
        raise WeightsUnavailableError(f"{spec.name}: its host needs a browser: download {spec.page} and save it as "
                                      f"{dest}")
    url = download_url(spec.file_name, spec.url)
    try:
        download(url, dest, spec.sha256, timeout, progress)
    except urllib.error.HTTPError as e:
        raise WeightsUnavailableError(f"{spec.name}: {url} answered HTTP {e.code} {e.reason}; download it yourself "
                                      f"and save it as {dest}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise WeightsUnavailableError(f"{spec.name}: cannot download ({reason}): download {url} and save it as "
                                      f"{dest}") from None
    return Fetched(spec.name, dest, "downloaded", dest.stat().st_size)
