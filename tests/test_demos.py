"""The demos show streamtag's notices as the CLI does: one `streamtag:` line, no Python file and line number."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import DEMO_CLIP, ROOT


def test_tag_long_file_prints_the_default_models_fallback_as_one_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), STREAMTAG_HOME=str(tmp_path / "home"),
               STREAMTAG_DOWNLOAD_BASE="http://127.0.0.1:9")
    res = subprocess.run([sys.executable, str(ROOT / "demos" / "tag_long_file.py"), str(DEMO_CLIP),
                          "--window", "10", "--hop", "5"], capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr
    notices = [line for line in res.stderr.splitlines() if line.strip()]
    assert notices and notices[0].startswith("streamtag: using the bundled mn04_as"), res.stderr
    assert "DefaultModelFallback" not in res.stderr and "warnings.warn" not in res.stderr
    assert "most heard" in res.stdout
