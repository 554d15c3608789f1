"""benchmarks/compare_official.py: the pairing, the timing of whole processes, the summary and the table, and a
whole run whose 'official' side is a fake (the real one needs the anchors' own venv)."""
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from streamtag.models import get_spec
from streamtag.models.weights import bundled_path
from tests.helpers import DEMO_CLIP, ROOT

spec = importlib.util.spec_from_file_location("compare_official", ROOT / "benchmarks" / "compare_official.py")
co = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = co  # its dataclasses look their module up
spec.loader.exec_module(co)


def test_pairs_warm_each_side_once_then_alternate_official_first():
    calls = []

    def runner(cmd):
        calls.append(cmd[0])
        return co.Run(float(len(calls)), 1.0)

    runs = co.run_pairs({"official": ["o"], "streamtag": ["s"]}, 3, runner=runner)
    assert calls == ["o", "s"] * 4
    assert [r.wall_s for r in runs["official"]] == [3.0, 5.0, 7.0]  # the warm-up runs (1, 2) are not kept
    assert [r.wall_s for r in runs["streamtag"]] == [4.0, 6.0, 8.0]
    calls.clear()
    co.run_pairs({"official": ["o"], "streamtag": ["s"]}, 1, warm=False, runner=runner)
    assert calls == ["o", "s"]
    with pytest.raises(ValueError):
        co.run_pairs({"official": ["o"], "streamtag": ["s"]}, 0, runner=runner)


@pytest.mark.parametrize("official, ours, median_ratio, lo, hi", [
    ([12.0, 14.0, 13.0], [2.0, 2.6, 2.5], 13.0 / 2.5, 5.2, 6.0),
    ([16.0], [2.0], 8.0, 8.0, 8.0),
    ([10.0, 30.0], [5.0, 5.0], 4.0, 2.0, 6.0),  # an even count: the mean of the middle two
])
def test_summary_ratios_medians_and_peaks(official, ours, median_ratio, lo, hi):
    runs = {"official": [co.Run(t, 900.0 + i, cpu_s=2 * t, steal_s=0.25) for i, t in enumerate(official)],
            "streamtag": [co.Run(t, 300.0 - i, cpu_s=1.5 * t, steal_s=0.0) for i, t in enumerate(ours)]}
    r = co.summarise(co.Setting(10, 2.5), runs, 5e-5, {"official": [237, 527], "streamtag": [237, 527]},
                     (0.1, 0.2, 0.3), (1.5, 0.5, 0.4))
    assert r["ratio_of_medians"] == pytest.approx(median_ratio, abs=1e-3)
    assert (r["ratio_min"], r["ratio_max"]) == (pytest.approx(lo, abs=1e-3), pytest.approx(hi, abs=1e-3))
    assert [p["official_s"] / p["streamtag_s"] for p in r["pairs"]] == pytest.approx([p["ratio"] for p in r["pairs"]],
                                                                                    abs=1e-3)
    assert r["official"]["peak_rss_mb"] == 900.0 + len(official) - 1 and r["streamtag"]["peak_rss_mb"] == 300.0
    assert r["windows"] == 237 and r["load_before"] == [0.1, 0.2, 0.3]
    table = co.markdown({"settings": [r], "pairs": len(official), "audio_s": 600, "machine": "a CPU, 2 cores",
                         "command": "python benchmarks/compare_official.py ..."})
    assert f"| 10 s / 2.5 s | 237 | {np.median(official):.2f} s" in table
    assert f"{median_ratio:.2f}x ({lo:.2f}-{hi:.2f})" in table and "| 5.0e-05 |" in table
    assert sum(line.startswith("| 10 s / 2.5 s | ") for line in table.splitlines()) == 1 + len(official)
    assert r["steal_s_total"] == pytest.approx(0.25 * len(official))
    assert f"| {0.25 * len(official):.2f} s |" in table  # the summary's host steal
    first = r["pairs"][0]
    assert (first["official_cpu_s"], first["streamtag_cpu_s"]) == (2 * official[0], 1.5 * ours[0])
    assert f"| {2 * official[0]:.2f} / {1.5 * ours[0]:.2f} s | 0.25 s / 0.00 s |" in table
    runs["official"][0] = co.Run(official[0], 900.0)  # a run whose steal could not be read
    unknown = co.summarise(co.Setting(10, 2.5), runs, 5e-5, {"official": [237, 527], "streamtag": [237, 527]},
                           (0.1, 0.2, 0.3), (1.5, 0.5, 0.4))
    assert unknown["steal_s_total"] is None
    assert "| unknown |" in co.markdown({"settings": [unknown], "pairs": len(official), "audio_s": 600,
                                          "machine": "a CPU", "command": "..."})


def test_a_process_is_timed_with_its_own_peak_rss():
    ballast = bytearray(400 << 20)  # this process is large: a child's peak must not include it
    ballast[::4096] = b"x" * len(ballast[::4096])
    small = co.timed([sys.executable, "-c", "print('done')"])
    big = co.timed([sys.executable, "-c", "b = bytearray(300 << 20); b[::4096] = b'x' * len(b[::4096]); print(7)"])
    assert small.stdout_tail == "done" and big.stdout_tail == "7"
    assert big.peak_rss_mb >= 300 > small.peak_rss_mb and big.wall_s > 0
    spin = co.timed([sys.executable, "-c", "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"])
    assert spin.cpu_s >= 0.3 > small.cpu_s  # the command's own CPU, counted through GNU time
    assert spin.steal_s is None or spin.steal_s >= 0
    with pytest.raises(RuntimeError, match="ValueError: nope"):
        co.timed([sys.executable, "-c", "raise ValueError('nope')"])


def test_settings_parse_and_refuse_bad_ones():
    assert co.Setting.parse("10:2.5") == co.Setting(10.0, 2.5)
    assert co.Setting.parse("1:0.5").label == "1 s / 0.5 s"
    for bad in ("0:1", "1:0", "1:-1"):
        with pytest.raises(ValueError):
            co.Setting.parse(bad)


def test_audio_is_repeated_to_length_at_its_own_rate(tmp_path):
    out = co.repeat_to(DEMO_CLIP, 30.0, tmp_path / "a.wav")
    got, rate = sf.read(out, dtype="int16", always_2d=True)
    src, src_rate = sf.read(DEMO_CLIP, dtype="int16", always_2d=True)
    assert rate == src_rate and got.shape == (30 * rate, src.shape[1])
    np.testing.assert_array_equal(got[:len(src)], src)
    np.testing.assert_array_equal(got[len(src):2 * len(src)], src)


FAKE_OFFICIAL = '''
import subprocess, sys
import numpy as np
audio, model, weights, window, hop, out = sys.argv[1:7]
subprocess.run([sys.executable, "-m", "streamtag", "tag", audio, "--model", model, "--weights", weights, "--window",
                window, "--hop", hop, "--format", "npz", "-o", out + ".npz", "--quiet"], check=True)
scores = np.load(out + ".npz")["scores"]
np.save(out, scores + np.float32(1e-3) * (scores < 0.5) - np.float32(1e-3) * (scores >= 0.5))
print(len(scores), "1.0")
'''


def test_a_whole_run_against_a_fake_official_side(tmp_path):
    """The official side replaced by a script that shifts streamtag's own scores by 1e-3: the report finds it."""
    fake = tmp_path / "fake_eatagger.py"
    fake.write_text(FAKE_OFFICIAL)
    weights = bundled_path(get_spec("mn04_as").file_name)
    out = tmp_path / "report" / "cmp"
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "compare_official.py"), "--official-python",
                          sys.executable, "--official-runner", str(fake), "--weights", str(weights), "--model",
                          "mn04_as", "--audio", str(DEMO_CLIP), "--seconds", "8", "--settings", "2:1", "--pairs", "1",
                          "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    report = json.loads(out.with_suffix(".json").read_text())
    (r,) = report["settings"]
    assert r["windows"] == 7 and r["shapes"]["official"] == [7, 527]
    assert r["max_abs_score_diff"] == pytest.approx(1e-3, abs=1e-6)
    assert len(r["pairs"]) == 1 and r["pairs"][0]["official_printed"] == "7 1.0"
    assert r["official"]["peak_rss_mb"] > 0 and r["streamtag"]["peak_rss_mb"] > 0
    assert r["pairs"][0]["official_cpu_s"] > 0 and r["pairs"][0]["streamtag_cpu_s"] > 0
    assert "| 2 s / 1 s | 7 |" in out.with_suffix(".md").read_text()
