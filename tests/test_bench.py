"""`streamtag bench` runs both sides and the live simulation and reports comparable numbers (no speed asserted)."""
import json

import pytest
from click.testing import CliRunner

from streamtag.cli import main
from tests.helpers import MN04_WEIGHTS


@pytest.mark.slow  # 15 s of benchmarking: runs in the full suite, not in the fresh clone's quick pass
def test_bench_reports_both_sides_with_equal_scores():
    res = CliRunner().invoke(main, ["bench", "--model", "mn04_as", "--weights", str(MN04_WEIGHTS), "--duration", "8", "--window", "1",
                                    "--hop", "0.5", "--repeats", "1", "--live-seconds", "3", "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    assert r["pipeline"]["windows"] == r["baseline"]["windows"] == 15
    assert r["max_abs_score_diff"] <= 1e-4
    for side in ("pipeline", "baseline"):
        assert r[side]["windows_per_s"] > 0 and r[side]["peak_rss_mb"] > 0
    assert r["speedup"] == r["pipeline"]["windows_per_s"] / r["baseline"]["windows_per_s"]
    live = r["live"]
    assert live["windows"] >= 3 and 0 <= live["latency_ms_p50"] <= live["latency_ms_p95"] <= live["latency_ms_max"]
    assert live["lost_samples"] == 0


def test_bench_has_no_official_code_option():
    """The comparison with the official EATagger runs from benchmarks/ in a venv of its own, not inside the package."""
    res = CliRunner().invoke(main, ["bench", "--reference-code", "."])
    assert res.exit_code == 2 and "No such option" in res.output
