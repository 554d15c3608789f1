"""A newcomer's first commands: errors before notices, a short fallback notice, models found by any part of
their name, a benchmark with real weights by default, and subscribers that can be detached."""
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from streamtag import Tagger
from streamtag.cli import main
from streamtag.models import get_spec, list_models
from tests.helpers import CLIP32, LABELS_CSV, ROOT


def test_input_and_window_errors_come_before_any_model_notice(isolated_home):
    for args, error in ((["nosuch.wav"], "nosuch.wav: no such file"),
                        ([str(CLIP32), "--window", "0"], "window must be > 0 seconds"),
                        ([str(CLIP32), "--hop", "nan"], "hop must be a finite number")):
        res = CliRunner().invoke(main, ["tag", *args])
        assert res.exit_code == 1 and error in res.stderr, res.stderr
        assert "using the bundled" not in res.stderr, res.stderr


def test_the_fallback_notice_is_one_short_line_that_says_how_to_get_the_default(isolated_home):
    res = CliRunner().invoke(main, ["tag", str(CLIP32), "--window", "1", "--hop", "0.5"])
    assert res.exit_code == 0, res.stderr
    notice = [line for line in res.stderr.splitlines() if "using the bundled" in line]
    assert len(notice) == 1 and len(notice[0]) < 100 and "streamtag download mn10_as" in notice[0]
    res = CliRunner().invoke(main, ["models", "mn10_as"])
    assert res.exit_code == 0
    assert "mn10_as *" in res.output and "* the default model" in res.output
    assert f"save it as {isolated_home / 'mn10_as_mAP_471.pt'}" in res.output


def test_models_are_found_by_name_part_glob_or_full_name():
    assert [s.name for s in list_models("mn10_as")] == ["mn10_as"]
    assert {s.name for s in list_models("mn10")} >= {"mn10_as", "mn10_as_hop_15", "dymn10_as"}
    assert [s.name for s in list_models("mn1*")] == [s.name for s in list_models() if s.name.startswith("mn1")]
    assert list_models("no-such") == []
    rows = json.loads(CliRunner().invoke(main, ["models", "--json", "hop"]).output)
    assert [r["name"] for r in rows] == ["mn10_as_hop_15", "mn10_as_hop_20", "mn10_as_hop_25"]
    assert not any(r["default"] for r in rows)


def test_bench_without_weights_uses_the_bundled_model(isolated_home):
    res = CliRunner().invoke(main, ["bench", "--duration", "3", "--window", "1", "--hop", "0.5", "--repeats", "1",
                                    "--no-live", "--no-baseline", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["model"] == "mn04_as" and report["weights"] == "bundled" and report["pipeline"]["windows"] == 5


def test_subscribers_last_until_detached_through_their_handle():
    tagger = Tagger("mn04_as", window=1.0, hop=0.5, device="cpu", labels=LABELS_CSV)
    wave = np.zeros(32000 * 2, np.float32)
    seen, kept = [], []

    @tagger.subscribe
    def count(r):
        seen.append(r.index)
    tagger.subscribe(kept.append)
    list(tagger.tag_array(wave, 32000))
    list(tagger.tag_array(wave, 32000))  # a second run: still subscribed
    assert seen == [0, 1, 2] * 2 and len(kept) == 6
    count.unsubscribe()
    count.unsubscribe()  # idempotent
    tagger.unsubscribe(kept.append)  # the same callback given again (an equal bound method) also detaches
    list(tagger.tag_array(wave, 32000))
    assert seen == [0, 1, 2] * 2 and len(kept) == 6


def _readme_model_names() -> list[str]:
    """The backticked names in the first column of the README's model table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| name | params |"):]
    table = table[: table.index("\n\n")]
    rows = [line.split("|")[1] for line in table.splitlines()[2:]]
    return [n for row in rows for n in re.findall(r"`([a-z0-9_]+)`", row)]


def test_the_readme_model_table_names_every_registered_model_and_nothing_else():
    names = _readme_model_names()
    assert len(names) == len(set(names))
    assert set(names) == {s.name for s in list_models()}


def test_every_registered_model_states_its_parameter_count():
    assert [s.name for s in list_models() if not s.params_millions] == []
    res = CliRunner().invoke(main, ["models", "eat_large*"])
    assert res.exit_code == 0 and "308.87M" in res.output and "309.41M" in res.output


@pytest.mark.slow
@pytest.mark.parametrize("name", ["eat_large_epoch20", "eat_large_epoch20_as2m", "mn40_as", "ssast_tiny_frame_400"])
def test_stated_parameter_counts_are_those_of_the_built_network(name):
    from streamtag.models import create_model
    model = create_model(name, pretrained=False)
    assert abs(sum(p.numel() for p in model.parameters()) / 1e6 - get_spec(name).params_millions) < 0.01
