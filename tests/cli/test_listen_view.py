"""`listen -o FILE` on a terminal shows the live view while it writes the file; rows name the input, not
"input -> model"."""
from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time

from tests.helpers import DEMO_CLIP, ROOT


def run_on_a_terminal(args: list[str], stdin_path, env: dict) -> str:
    """Run `python -m streamtag ARGS` with standard output on a pseudo-terminal; what the terminal showed."""
    master, slave = pty.openpty()
    with open(stdin_path, "rb") as audio:
        p = subprocess.Popen([sys.executable, "-m", "streamtag", *args], stdin=audio, stdout=slave,
                             stderr=subprocess.PIPE, env=env, cwd=ROOT)
    os.close(slave)
    shown = bytearray()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    p.wait(timeout=60)
    os.close(master)
    assert p.returncode == 0, p.stderr.read().decode()
    return shown.decode(errors="replace")


def test_listen_to_a_file_from_a_terminal_shows_the_live_view_and_writes_rows(tmp_path, isolated_home):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = tmp_path / "live.jsonl"
    shown = run_on_a_terminal(["listen", "--input", "-", "--model", "mn04_as", "--window", "1", "--hop", "0.5",
                               "-o", str(out), "--quiet"], DEMO_CLIP, env)
    assert "s window)" in shown and "Speech" in shown  # the view's heading and its tags
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) > 10
    assert {r["model"] for r in rows} == {"mn04_as"}
    assert all("->" not in r["file"] for r in rows)
