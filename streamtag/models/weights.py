"""Where weights come from (explicit path -> $STREAMTAG_HOME -> bundled -> download) and how they load."""
from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import urllib.error
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import WeightsError, WeightsUnavailableError
from .spec import ModelSpec

if TYPE_CHECKING:
    import torch
    from torch import nn

DOWNLOAD_TIMEOUT_S = 30.0


def streamtag_home() -> Path:
    """The cache folder: $STREAMTAG_HOME, else ~/.cache/streamtag."""
    return Path(os.environ.get("STREAMTAG_HOME") or Path.home() / ".cache" / "streamtag").expanduser()


def download_url(file_name: str, official_url: str) -> str:
    """The official URL, or the same file under $STREAMTAG_DOWNLOAD_BASE (a mirror) when that is set."""
    base = os.environ.get("STREAMTAG_DOWNLOAD_BASE")
    return f"{base.rstrip('/')}/{file_name}" if base else official_url


def bundled_path(file_name: str) -> Path | None:
    """The copy shipped in `streamtag/assets`, if the package carries one."""
    candidate = resources.files("streamtag.assets") / file_name
    return Path(str(candidate)) if candidate.is_file() else None


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_sha256(path: Path, expected: str | None, what: str) -> None:
    """Refuse a file whose sha256 differs from the published one."""
    if expected is None:
        return
    actual = sha256_file(path)
    if actual != expected:
        raise WeightsError(
            f"{path}: sha256 {actual[:16]}… does not match the published {expected[:16]}… for {what}; "
            f"the file is corrupt or not the official one (delete it and download it again)")


Progress = Callable[[int, "int | None"], None]  # (bytes so far, total bytes when the server says) -> None


def download(url: str, dest: Path, expected_sha256: str | None, timeout: float = DOWNLOAD_TIMEOUT_S,
             progress: Progress | None = None) -> Path:
    """Download to a temporary file beside `dest`, verify its length and sha256, then rename into place.

    The temporary file is removed on any failure (an HTTP error, a dropped connection, a wrong sha256, an
    interrupt), so `dest` is either the complete, verified file or untouched. `progress(done, total)` is called
    after each chunk."""
    # imported here: their HTTP and TLS modules would cost every start-up that downloads nothing
    import http.client
    import urllib.request
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        h = hashlib.sha256()
        done = 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if progress is not None:
                progress(0, total)
            try:
                for chunk in iter(lambda: resp.read(1 << 16), b""):
                    h.update(chunk)
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
            except (http.client.IncompleteRead, ConnectionError, TimeoutError):
                total = -1 if total is None else total  # the connection dropped mid-file
            if total is not None and done != total:
                of = f" of {total}" if total >= 0 else ""
                raise WeightsError(f"download of {url} stopped after {done}{of} bytes (the connection "
                                   f"dropped); nothing was saved")
        if expected_sha256 is not None and h.hexdigest() != expected_sha256:
            raise WeightsError(f"download of {url} has sha256 {h.hexdigest()[:16]}…, "
                               f"expected {expected_sha256[:16]}…; nothing was saved")
        os.replace(tmp, dest)
        return dest
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@dataclass(frozen=True)
class ResolvedFile:
    """A file found for a model or the labels, and where it came from."""

    path: Path
    origin: str  # "explicit" | "cache" | "bundled" | "download"


def weights_sha256(spec: ModelSpec, weights: ResolvedFile) -> str:
    """The sha256 of a resolved weights file: the published one when it was checked against it, else computed (and
    remembered, `remembered_sha256`)."""
    return spec.sha256 if spec.sha256 and weights.origin != "explicit" else remembered_sha256(weights.path)


def remembered_sha256(path: str | os.PathLike) -> str:
    """`sha256_file(path)`, remembered in the cache under the file's real path with its identity (device, inode,
    size, modification and change times in ns): a later run reads the digest, not the file, until any of these
    changes. A cache that cannot be written only means hashing again next time."""
    st = os.stat(path)
    identity = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
    memo = streamtag_home() / "digests" / hashlib.sha256(os.path.realpath(path).encode()).hexdigest()[:32]
    try:
        known, digest = memo.read_text().split()
        if known == identity and len(digest) == 64:
            return digest
    except (OSError, ValueError):
        pass
    digest = sha256_file(path)
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(f"{memo.name}.{os.getpid()}.partial")
        tmp.write_text(f"{identity} {digest}\n")
        os.replace(tmp, memo)
    except OSError:
        pass
    return digest


def offline_message(what: str, file_name: str, url: str, reason: str, hint: str = "") -> str:
    dest = streamtag_home() / file_name
    return (f"cannot get {what} offline: download {url} and save it as {dest}{hint} "
            f"(download failed: {reason})")


def find_cached(spec: ModelSpec) -> ResolvedFile | None:
    """Weights already on this machine (cache or bundled), verified; None if neither exists."""
    cached = streamtag_home() / spec.file_name
    if cached.is_file():
        verify_sha256(cached, spec.sha256, spec.name)
        return ResolvedFile(cached, "cache")
    bundled = bundled_path(spec.file_name)
    if bundled is not None:
        verify_sha256(bundled, spec.sha256, spec.name)
        return ResolvedFile(bundled, "bundled")
    return None


def resolve_weights(spec: ModelSpec, explicit: str | os.PathLike | None = None) -> ResolvedFile:
    """Find the weights of `spec`: explicit path, then cache, then bundled copy, then download."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise WeightsError(f"weights file not found: {path}")
        return ResolvedFile(path, "explicit")
    found = find_cached(spec)
    if found is not None:
        return found
    if spec.page is not None and not os.environ.get("STREAMTAG_DOWNLOAD_BASE"):
        raise WeightsUnavailableError(
            f"the {spec.name} weights are not on this machine and their host needs a browser: download "
            f"{spec.page} and save it as {streamtag_home() / spec.file_name} (or pass --weights PATH / weights=PATH)")
    url = download_url(spec.file_name, spec.url)
    try:
        return ResolvedFile(download(url, streamtag_home() / spec.file_name, spec.sha256), "download")
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise WeightsUnavailableError(offline_message(
            f"the {spec.name} weights", spec.file_name, url, str(reason),
            " (or pass --weights PATH / weights=PATH)")) from None


def read_checkpoint(path: str | os.PathLike) -> object:
    """Load a checkpoint safely (weights_only: tensors and plain containers, never code)."""
    from ..deps import require_torch
    torch = require_torch()
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"weights file not found: {path}") from None
    except pickle.UnpicklingError as e:
        detail = _unpickling_detail(str(e))
        if "GLOBAL" in str(e) or "global" in detail:
            raise WeightsError(f"{path}: refused: the checkpoint holds pickled objects other than tensors, "
                               f"which could run code ({detail})") from None
        raise WeightsError(f"{path}: not a readable PyTorch checkpoint ({detail})") from None
    except Exception as e:  # torch's unpickler fails on arbitrary bytes in many ways (KeyError, IndexError, ...)
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        detail = first if isinstance(e, (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError)) else \
            f"{type(e).__name__}: {first}" if first else type(e).__name__
        raise WeightsError(f"{path}: not a readable PyTorch checkpoint ({detail})") from None
    return obj


def load_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a flat state dict of tensors (a Lightning `state_dict` entry is unwrapped)."""
    return state_dict_of(read_checkpoint(path), str(path))


def state_dict_of(obj: object, source: str) -> dict[str, torch.Tensor]:
    """The flat tensor state dict in a loaded checkpoint (a Lightning `state_dict` entry is unwrapped)."""
    import torch
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{source}: not a state dict of tensors")
    return obj


def _unpickling_detail(message: str) -> str:
    """The informative line of torch's weights_only error (it starts with a generic paragraph)."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith(("Trying to load", "Unsupported")):
            return ln
    return lines[-1] if lines else "unpickling failed"


def load_into(model: "nn.Module", state: "dict[str, torch.Tensor]", source: str, arch: str) -> None:
    """Load `state` strictly, naming missing or unexpected keys and shape mismatches if it does not fit."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
              for k, v in own.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                             ("shape mismatches (file vs model)", shapes)):
            if items:
                more = f" and {len(items) - 3} more" if len(items) > 3 else ""
                parts.append(f"{label}: {', '.join(items[:3])}{more}")
        raise WeightsError(f"{source} does not fit the {arch} architecture: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)
