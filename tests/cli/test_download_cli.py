"""`streamtag download NAME...` against a real HTTP server on 127.0.0.1: a line per model, a progress bar, one
error line per model that cannot be had (the others are still fetched), exit 1 then."""
from __future__ import annotations

import dataclasses
import hashlib

from click.testing import CliRunner

from streamtag.cli import main
from streamtag.models import get_spec
from tests.models.test_download import PAYLOAD, server  # noqa: F401  (the module's HTTP server fixture)


def test_download_fetches_shows_progress_and_reports_each_model(server, isolated_home, monkeypatch):  # noqa: F811
    import streamtag.models.download as dl
    monkeypatch.delenv("STREAMTAG_DOWNLOAD_BASE")
    good = dataclasses.replace(get_spec("mn01_as"), file_name="good.pt", url=f"{server}/good.pt",
                               sha256=hashlib.sha256(PAYLOAD).hexdigest())
    missing = dataclasses.replace(get_spec("mn02_as"), file_name="missing.pt", url=f"{server}/missing.pt")
    specs = {"mn01_as": good, "mn02_as": missing}
    monkeypatch.setattr(dl, "get_spec", lambda name: specs.get(name) or get_spec(name))

    res = CliRunner().invoke(main, ["download", "mn02_as", "mn01_as", "mn04_as", "--progress"])
    assert res.exit_code == 1
    assert res.stderr.count("streamtag: error:") == 1
    assert f"streamtag: error: mn02_as: {server}/missing.pt answered HTTP 404 Not Found" in res.stderr
    bar = [part for part in res.stderr.replace("\r", "\n").splitlines() if part.startswith("mn01_as:")]
    assert bar and "/1.00M" in bar[0], res.stderr  # a progress bar in bytes, of the announced size
    lines = res.stdout.splitlines()
    assert lines[0] == f"mn01_as: downloaded {len(PAYLOAD) / 1e6:.1f} MB, sha256 checked: {isolated_home / 'good.pt'}"
    assert lines[1].startswith("mn04_as: bundled with streamtag: ")
    assert (isolated_home / "good.pt").read_bytes() == PAYLOAD

    again = CliRunner().invoke(main, ["download", "mn01_as"])
    assert again.exit_code == 0 and again.stdout.startswith("mn01_as: already here, sha256 checked: ")


def test_download_offline_is_one_line_with_the_url_and_the_path(isolated_home):
    res = CliRunner().invoke(main, ["download", "mn10_as"])
    assert res.exit_code == 1
    (line,) = res.stderr.splitlines()
    assert line.startswith("streamtag: error: mn10_as: cannot download (")
    assert line.endswith(f"download http://127.0.0.1:9/mn10_as_mAP_471.pt and save it as "
                         f"{isolated_home / 'mn10_as_mAP_471.pt'}")


def test_download_of_an_unknown_model_suggests_names():
    res = CliRunner().invoke(main, ["download", "mn10"])
    assert res.exit_code == 1 and "did you mean" in res.stderr
