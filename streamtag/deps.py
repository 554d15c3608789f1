"""Loading torch, with one line that names the fix when the installed build cannot load."""
from __future__ import annotations

import os
import sys
from importlib import metadata
from types import ModuleType

from .errors import DependencyError

TESTED_TORCH = "2.13.0"  # the release constraints.txt pins and CI tests


def installed_version(package: str) -> str | None:
    """The installed distribution's version, or None."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def torch_problem(error: BaseException) -> str:
    """One line: which torch is installed, why it does not load, and the command that fixes it."""
    version = installed_version("torch")
    fix = f"pip install --force-reinstall torch=={TESTED_TORCH}"
    if version is None:
        return f"torch is not installed; install the tested release: pip install torch=={TESTED_TORCH}"
    why = " ".join(str(error).split())[:200] or type(error).__name__
    return f"torch {version} is installed but cannot be loaded ({why}); reinstall the tested release: {fix}"


def require_torch() -> ModuleType:
    """Import torch, or raise DependencyError with `torch_problem`'s line."""
    try:
        import torch
    except (ImportError, OSError) as e:
        raise DependencyError(torch_problem(e)) from e
    return torch


def cuda_may_be_present() -> bool:
    """Whether torch could find a CUDA GPU here, told without importing torch: False for a CPU-only torch build
    (`+cpu`), or for a CUDA build on Linux without the NVIDIA driver; else True (torch is asked)."""
    version = installed_version("torch") or ""
    if version.endswith("+cpu") or sys.platform == "darwin":
        return False
    if sys.platform.startswith("linux") and "+rocm" not in version:
        return os.path.exists("/proc/driver/nvidia/version")
    return True
