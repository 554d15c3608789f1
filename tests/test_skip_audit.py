"""The skip audit in tests/conftest.py: which skips pass a run, and that CI=true makes a skipped live test fail it."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

SKIPPING = '''
import pytest

def test_live():
    pytest.skip("{reason}")
'''


def run_skipping(tmp_path, reason: str, ci: str | None) -> subprocess.CompletedProcess:
    """pytest on one test that skips with `reason`, under the project's conftest as a plugin."""
    (tmp_path / "test_one.py").write_text(SKIPPING.format(reason=reason))
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_one.py")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("reason, ci, code", [
    ("PulseAudio is not installed", None, 0),  # a developer's machine without an audio server
    ("PulseAudio is not installed", "true", 1),  # CI installs it: a skip there is a failure
    ("needs the project's shared test material at {shared} (not part of a clone)", "true", 0),
])
def test_a_skip_passes_or_fails_the_run_by_its_reason(tmp_path, reason, ci, code):
    from tests.helpers import SHARED
    res = run_skipping(tmp_path, reason.format(shared=SHARED), ci)
    assert res.returncode == code, res.stdout + res.stderr
    assert "1 skipped" in res.stdout
