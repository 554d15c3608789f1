"""The serve extra is imported lazily: `import streamtag` and the server's config need no aiohttp."""
import subprocess
import sys


def test_streamtag_and_the_serve_config_import_no_aiohttp():
    code = ("import sys, streamtag, streamtag.server, streamtag.server.config, streamtag.pipeline.tagger\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'playwright')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
