"""`streamtag index` and `streamtag search` from the command line; `train --val-share 0`."""
import csv
import subprocess
import sys

import numpy as np
import soundfile as sf

from tests.helpers import DEMO_CLIP, MN04_WEIGHTS


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "streamtag", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_index_then_search_writes_a_review_file_and_clips(tmp_path):
    ix = str(tmp_path / "ix")
    first = run("index", str(DEMO_CLIP), "--index", ix, "--model", "mn04_as", "--weights", str(MN04_WEIGHTS))
    assert first.returncode == 0 and "1 added (24 windows)" in first.stderr, first.stderr
    again = run("index", str(DEMO_CLIP), "--index", ix, "--model", "mn04_as", "--weights", str(MN04_WEIGHTS))
    assert again.returncode == 0 and "0 added (0 windows), 1 already indexed" in again.stderr
    other = run("index", str(DEMO_CLIP), "--index", ix, "--model", "mn04_as", "--weights", str(MN04_WEIGHTS),
                "--window", "2")
    assert other.returncode == 1 and other.stderr.count("\n") == 1 and "use another --index folder" in other.stderr
    table = run("search", "--index", ix, f"{DEMO_CLIP}:9-11", "--top", "5")
    assert table.returncode == 0 and "similarity" in table.stdout and str(DEMO_CLIP) in table.stdout
    out = tmp_path / "hits.csv"
    res = run("search", "--index", ix, f"{DEMO_CLIP}:9-11", "--top", "5", "-o", str(out), "--clips",
              str(tmp_path / "clips"), "--label", "dog")
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(open(out)))
    assert rows and all(r["label"] == "dog" and r["review"] == "" for r in rows)
    assert sum(int(r["windows"]) for r in rows) == 5
    assert len(list((tmp_path / "clips").glob("*.wav"))) == len(rows)
    for onset in (float(r["onset_s"]) for r in rows):  # never the query's own windows (9-11 s)
        assert not 9 <= onset < 10.5
    bad = run("search", "--index", ix, "--uncertain")
    assert bad.returncode == 1 and "--head" in bad.stderr and "Traceback" not in bad.stderr
    missing = run("search", "--index", str(tmp_path / "none"), "x.wav")
    assert missing.returncode == 1 and "no streamtag index there" in missing.stderr


def test_train_without_validation_says_so(tmp_path):
    rng = np.random.default_rng(0)
    for c, f in (("low", 500), ("high", 3000)):
        (tmp_path / "d" / c).mkdir(parents=True)
        t = np.arange(16000 * 4) / 16000
        sf.write(tmp_path / "d" / c / "a.wav", (0.3 * np.sin(2 * np.pi * f * t) + 0.01 * rng.standard_normal(len(t)))
                 .astype(np.float32), 16000)
    res = run("train", str(tmp_path / "d"), "-o", str(tmp_path / "h.pt"), "--model", "mn04_as", "--weights",
              str(MN04_WEIGHTS), "--window", "1", "--hop", "0.5", "--val-share", "0")
    assert res.returncode == 0, res.stderr
    assert "not validated (--val-share 0): thresholds 0.5 for every class" in res.stdout
