"""Fixtures, the CUDA skip, and the skip audit: a test may skip only for a reason declared here."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from tests.helpers import DYMN04_RANDOM, MN04_WEIGHTS, MN10_RANDOM, SHARED_MISSING, require_shared

torch.set_num_threads(2)

NO_CUDA = "no CUDA GPU on this machine"
NO_AUDIO_SERVER = "PulseAudio"  # tests/audio/test_microphone.py: not installed, or no server starts
NO_MQTT_BROKER = "mosquitto is not installed"  # tests/outputs/services.py (a failure under CI=true)
# A skip for any other reason (an importorskip, a forgotten skipif) fails the run: a test that does
# not need ../shared, a GPU or an audio server must run everywhere.
# Under CI=true (`.ci/run` sets it, after installing PulseAudio and mosquitto) the service tests must run: a skip
# there means an install or a server failed, and the run fails instead of passing quietly.
ON_CI = os.environ.get("CI", "").lower() == "true"
ALLOWED_SKIP_REASONS = ((SHARED_MISSING, NO_CUDA) if ON_CI
                        else (SHARED_MISSING, NO_CUDA, NO_AUDIO_SERVER, NO_MQTT_BROKER))
_unexpected_skips: list[str] = []


def pytest_collection_modifyitems(config, items):
    if not torch.cuda.is_available():
        skip_dev = pytest.mark.skip(reason=NO_CUDA)
        for item in items:
            if "device" in item.keywords:
                item.add_marker(skip_dev)


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = _skip_reason(report)
        if not any(allowed in reason for allowed in ALLOWED_SKIP_REASONS):
            _unexpected_skips.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session, exitstatus):
    if _unexpected_skips and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if _unexpected_skips:
        terminalreporter.section("skipped for an undeclared reason (see tests/conftest.py)", red=True)
        for line in _unexpected_skips:
            terminalreporter.line(line)


def _streamtag_children() -> set[int]:
    """The pids of this process's children that run streamtag (each thread's /proc/self/task/*/children)."""
    found = set()
    for listing in Path("/proc/self/task").glob("*/children"):
        try:
            pids = listing.read_text().split()
        except OSError:  # the thread ended
            continue
        for pid in pids:
            try:
                args = (Path("/proc") / pid / "cmdline").read_bytes().split(b"\0")[1:]
            except OSError:  # the child ended
                continue
            # `-m streamtag`, the console script, or code that imports it
            if any(a == b"streamtag" or a.endswith(b"/bin/streamtag") or b"from streamtag" in a
                   or b"import streamtag" in a for a in args):
                found.add(int(pid))
    return found


@pytest.fixture(autouse=True)
def no_leftover_runs():
    """A streamtag process a test started and left running (a failed test that never reached its kill) is killed
    after the test, so a hung run cannot slow or disturb the tests after it."""
    before = _streamtag_children()  # empty where /proc has no children lists: nothing is killed then
    yield
    for pid in _streamtag_children() - before:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="session")
def compiled_exports(tmp_path_factory):
    """One OpenVINO export cache for the session (exports are keyed by weights and shape, so sharing is safe)."""
    return tmp_path_factory.mktemp("compiled")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch, compiled_exports):
    """Every test gets an empty $STREAMTAG_HOME (but the session's export cache) and downloads that fail fast."""
    home = tmp_path / "streamtag-home"
    home.mkdir()
    (home / "compiled").symlink_to(compiled_exports, target_is_directory=True)
    monkeypatch.setenv("STREAMTAG_HOME", str(home))
    monkeypatch.setenv("STREAMTAG_DOWNLOAD_BASE", "http://127.0.0.1:9")
    return home


@pytest.fixture(scope="session")
def mn04():
    """The real mn04_as, from the bundled checkpoint."""
    from streamtag import create_model
    return create_model("mn04_as", weights=MN04_WEIGHTS)


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory):
    """`random_checkpoint(name)`: a seeded random-weight checkpoint of a registered architecture, as a file."""
    from streamtag import create_model
    made = {}

    def make(name: str, seed: int = 0):
        if (name, seed) not in made:
            torch.manual_seed(seed)
            path = tmp_path_factory.mktemp("checkpoints") / f"{name}_random{seed}.pt"
            torch.save(dict(create_model(name, pretrained=False).network.state_dict()), path)
            made[name, seed] = path
        return made[name, seed]
    return make


@pytest.fixture(scope="session")
def mn10_random():
    """The mn10_as architecture with the shared fixture's seeded random weights."""
    require_shared()
    from streamtag import create_model
    return create_model("mn10_as", weights=MN10_RANDOM)


@pytest.fixture(scope="session")
def dymn04_random():
    """The dymn04_as architecture with the shared fixture's seeded random weights."""
    require_shared()
    from streamtag import create_model
    return create_model("dymn04_as", weights=DYMN04_RANDOM)


@pytest.fixture
def broker(tmp_path):
    """A mosquitto broker of the test's own on 127.0.0.1 and a free port (tests/outputs/services.py), stopped after it."""
    from tests.outputs.services import Broker
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()
