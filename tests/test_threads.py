"""Process-wide thread settings: set before numpy and torch start their pools, never over the user's."""
import os
import subprocess
import sys

import pytest

CODE = """
import os
from streamtag.threads import configure_threads
configure_threads()
import numpy
print(os.environ["OMP_WAIT_POLICY"], os.environ["OPENBLAS_NUM_THREADS"], len(os.listdir("/proc/self/task")))
"""


@pytest.mark.parametrize("user,expected", [
    ({}, ["PASSIVE", "1", "1"]),  # numpy's OpenBLAS starts no second thread to spin beside the network's
    ({"OMP_WAIT_POLICY": "ACTIVE", "OPENBLAS_NUM_THREADS": "2"}, ["ACTIVE", "2", "2"]),  # the user's kept
])
@pytest.mark.skipif(not os.path.isdir("/proc/self/task") or (os.cpu_count() or 1) < 2,
                    reason="counts threads in /proc on a machine of two cores or more")
def test_configure_threads_sets_quiet_defaults_and_keeps_the_users(user, expected):
    env = {k: v for k, v in os.environ.items() if k not in {"OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS"}} | user
    res = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == expected
