"""Shared paths and fixtures: tests read real weights and goldens from ../shared."""
from __future__ import annotations

import pytest
import torch

from tests.helpers import MN04_WEIGHTS, MN10_RANDOM, SHARED

torch.set_num_threads(2)


def pytest_collection_modifyitems(config, items):
    if not SHARED.is_dir():
        skip = pytest.mark.skip(reason=f"shared test material not found at {SHARED}")
        for item in items:
            item.add_marker(skip)
    if not torch.cuda.is_available():
        skip_dev = pytest.mark.skip(reason="no CUDA GPU on this machine")
        for item in items:
            if "device" in item.keywords:
                item.add_marker(skip_dev)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Every test gets an empty $STREAMTAG_HOME and downloads that fail fast (no network here)."""
    home = tmp_path / "streamtag-home"
    monkeypatch.setenv("STREAMTAG_HOME", str(home))
    monkeypatch.setenv("STREAMTAG_DOWNLOAD_BASE", "http://127.0.0.1:9")
    return home


@pytest.fixture(scope="session")
def mn04():
    from streamtag import create_model
    return create_model("mn04_as", weights=MN04_WEIGHTS)


@pytest.fixture(scope="session")
def mn10_random():
    from streamtag import create_model
    return create_model("mn10_as", weights=MN10_RANDOM)
