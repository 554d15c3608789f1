"""Outputs that are not regular files are written in place, never renamed over; regular files stay atomic."""
import os
import stat
import subprocess
import sys
import threading

import pytest

from streamtag.outputs.sinks import AtomicFile, is_stream_path
from tests.helpers import DEMO_CLIP


def _tag(dest, *extra):
    return subprocess.run([sys.executable, "-m", "streamtag", "tag", str(DEMO_CLIP), "--model", "mn04_as", "-q",
                           "-o", str(dest), *extra], capture_output=True, text=True, timeout=300)


@pytest.fixture
def null_device(tmp_path):
    """A character device like /dev/null (major 1, minor 3), made inside the test's own folder."""
    path = tmp_path / "null"
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.fail("making a device node needs root (CI runs as root)")
    return path


@pytest.mark.parametrize("via_symlink", [False, True])
def test_a_device_node_stays_a_device(tmp_path, null_device, via_symlink):
    dest = null_device
    if via_symlink:
        dest = tmp_path / "out"
        dest.symlink_to(null_device)
    res = _tag(dest)
    assert res.returncode == 0, res.stderr
    assert stat.S_ISCHR(os.stat(null_device).st_mode) and stat.S_ISCHR(os.stat(dest).st_mode)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


@pytest.mark.parametrize("fmt, rows", [("jsonl", 2), ("csv", 1 + 2 * 5)])
def test_a_fifo_reader_receives_every_row(tmp_path, fmt, rows):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.extend(open(fifo, encoding="utf-8").read().splitlines()))
    reader.start()
    res = _tag(fifo, "--format", fmt)
    reader.join(timeout=60)
    assert res.returncode == 0, res.stderr
    assert not reader.is_alive() and len(got) == rows, got
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_regular_files_are_still_renamed_into_place(tmp_path):
    (tmp_path / "out").mkdir()
    dest = tmp_path / "out" / "x.txt"
    dest.write_text("old")
    with AtomicFile(dest) as f:
        f.write("new")
        assert dest.read_text() == "old"  # not replaced before commit
    assert dest.read_text() == "new" and not is_stream_path(dest)
    with pytest.raises(RuntimeError):
        with AtomicFile(dest) as f:
            f.write("broken")
            raise RuntimeError
    assert dest.read_text() == "new" and sorted(p.name for p in dest.parent.iterdir()) == ["x.txt"]
