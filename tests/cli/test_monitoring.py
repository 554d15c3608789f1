"""`tag`/`listen` with a detections database, clips, MQTT alerts and the privacy gate (real mosquitto, the shared
60 s mix), the `detections` query command, and a SIGKILL in the middle of a run."""
import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from streamtag.cli import main
from streamtag.errors import ConfigError
from streamtag.outputs.monitor import MonitorOptions
from streamtag.outputs.store import DetectionStore
from tests.helpers import DEMO_CLIP, LABELS_CSV, LONG_MIX, MN04_WEIGHTS, SHARED, needs_shared
from tests.outputs.services import Recorder

MN04 = ["--model", "mn04_as", "--weights", str(MN04_WEIGHTS), "--labels", str(LABELS_CSV), "--device", "cpu",
        "--window", "1", "--hop", "0.5"]
# The default on-threshold (0.3) opens rooster, rain and typing events 1.4-1.9 s late on this mix (their first
# windows score 0.15-0.29 after the median); these classes get their own, still far above their scores outside
# their segments (<= 0.06). The same option works for `tag` and `listen`.
THRESHOLDS = "0.3,Chicken, rooster=0.2,Rain on surface=0.15,Typing=0.2"
PADDING = 1.0
SPEECH = (8.0, 15.0)  # the mix's speech segment (timeline)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def timeline():
    with open(SHARED / "audio" / "long_mix_44k1.timeline.csv", newline="") as f:
        return [(float(r["onset_s"]), float(r["offset_s"]), r["label"].split(";")) for r in csv.DictReader(f)]


def check_monitoring(db, clips, events, offset_s, end_s, late=()):
    """Rows for every sound source of the mix with onsets within 1 s of the timeline (shifted by `offset_s`: where
    the mix starts in the stream), a clip per row of the event's length plus padding, silent over the speech, and
    one MQTT start and end message per row. `late`: sources the model itself hears late (found within their
    segment)."""
    rows = list(DetectionStore(db).events())
    assert rows
    for onset, offset, labels in timeline():
        found = [r["onset_s"] - offset_s for r in rows if r["label"] in labels]
        # the train recording starts quietly: mn04's Train scores stay < 0.06 in every window before 1.5 s
        tolerance = 1.3 if labels[0] == "Train" else 1.0
        if labels[0] in late:
            assert any(onset - tolerance <= f <= offset for f in found), (labels[0], onset, found)
        else:
            assert any(abs(f - onset) <= tolerance for f in found), (labels[0], onset, found)
    for r in rows:
        assert r["clip_path"] and os.path.dirname(r["clip_path"]) == str(clips), r
        clip, sr = sf.read(r["clip_path"], dtype="float32")
        a, b = max(0.0, r["onset_s"] - PADDING), min(end_s, r["offset_s"] + PADDING)
        assert abs(len(clip) - (b - a) * sr) <= 2, (r["label"], len(clip), (b - a) * sr)
        t = a + np.arange(len(clip)) / sr - offset_s  # mix time of each clip sample
        speech = (t >= SPEECH[0]) & (t <= SPEECH[1])
        assert np.all(clip[speech] == 0), r["label"]
        assert bool(r["redacted"]) == bool(speech.any()) or r["redacted"]
    messages = [json.loads(p) for p in events]
    starts = [m for m in messages if m["type"] == "start"]
    ends = [m for m in messages if m["type"] == "end"]
    stored = [m for m in ends if m["id"] is not None]  # the others: events that ended shorter than min-duration
    assert len(starts) == len(ends) and len(stored) == len(rows)
    assert sorted(m["id"] for m in stored) == sorted(r["id"] for r in rows)
    assert sorted((m["label"], m["onset_s"]) for m in starts) == sorted((m["label"], m["onset_s"]) for m in ends)
    return rows


@needs_shared
def test_tag_on_the_mix_stores_clips_and_alerts_every_event_without_speech_audio(tmp_path, broker):
    rec = Recorder(broker.port)
    db, clips = tmp_path / "db.sqlite", tmp_path / "clips"
    res = run("tag", LONG_MIX, *MN04, "--events", "--threshold", THRESHOLDS, "-o", tmp_path / "events.jsonl",
              "--store", db, "--clips", clips, "--alert", f"mqtt://127.0.0.1:{broker.port}/streamtag",
              "--privacy", "Speech")
    assert res.exit_code == 0, res.output
    assert "monitor:" in res.output and "0 dropped" in res.output
    n = len(list(DetectionStore(db).events()))
    assert rec.wait_for(lambda: len(rec.on("streamtag/events")) >= 2 * n)
    rows = check_monitoring(db, clips, rec.on("streamtag/events"), 0.0, sf.info(str(LONG_MIX)).duration)
    rec.close()
    # the --events output and the database hold the same events (one EventSettings)
    listed = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert sorted((e["label"], round(e["onset_s"], 3), round(e["offset_s"], 3)) for e in listed) == \
        sorted((r["label"], round(r["onset_s"], 3), round(r["offset_s"], 3)) for r in rows)
    assert all(sf.info(r["clip_path"]).samplerate == 44100 for r in rows)  # the source's rate
    run_row, = DetectionStore(db).runs()
    assert run_row["windows"] > 100 and run_row["lost_samples"] == 0 and run_row["ended_utc"]
    assert run_row["weights_sha256"] and json.loads(run_row["settings"])["monitor"]["privacy"] == "Speech"


def test_detections_command_filters_formats_and_summary(tmp_path):
    db = tmp_path / "db.sqlite"
    res = run("tag", DEMO_CLIP, *MN04, "--start-time", "2026-05-01T05:30:00Z", "--store", db, "-o",
              tmp_path / "out.jsonl", "--quiet")
    assert res.exit_code == 0, res.output
    rows = list(DetectionStore(db).events())
    assert {"Speech", "Dog"} <= {r["label"] for r in rows}
    out = run("detections", db, "--format", "jsonl")
    assert [json.loads(x) for x in out.output.splitlines()] == rows
    dog = run("detections", db, "--label", "dog", "--format", "csv")
    parsed = list(csv.DictReader(dog.output.splitlines()))
    assert [r["label"] for r in parsed] == ["Dog"] and parsed[0]["onset_utc"].startswith("2026-05-01T05:30:")
    later = run("detections", db, "--since", "2026-05-01T05:30:05Z", "--format", "jsonl")
    assert [json.loads(x)["id"] for x in later.output.splitlines()] == \
        [r["id"] for r in rows if r["onset_utc"] >= "2026-05-01T05:30:05"]
    assert run("detections", db, "--until", "2026-05-01T05:30:00Z").stdout == ""
    assert run("detections", db, "--source", "elsewhere", "--format", "jsonl").stdout == ""
    summary = run("detections", db, "--summary", "--format", "jsonl")
    by_label = {s["label"]: s for s in map(json.loads, summary.output.splitlines())}
    assert by_label["Dog"]["count"] == sum(r["label"] == "Dog" for r in rows)
    assert by_label["Dog"]["total_s"] == pytest.approx(sum(r["offset_s"] - r["onset_s"] for r in rows
                                                           if r["label"] == "Dog"), abs=1e-3)
    text = run("detections", db)
    assert text.exit_code == 0 and len(text.stdout.splitlines()) == len(rows)


@pytest.mark.parametrize("make,expect", [
    (None, "no such detections database"),
    (lambda p: p.write_text("not sqlite at all " * 10), "not a detections database"),
    (lambda p: p.write_bytes(b""), "not a detections database"),
    (lambda p: sqlite3.connect(p).execute("CREATE TABLE other (x)").connection.commit(), "not a detections database"),
])
def test_detections_command_refuses_what_is_not_a_database_in_one_line(tmp_path, make, expect):
    path = tmp_path / "x.db"
    if make is not None:
        make(path)
    res = run("detections", path)
    assert res.exit_code == 1 and expect in res.output and len(res.output.strip().splitlines()) == 1
    bad = run("detections", path, "--since", "yesterday") if make is None else None
    assert bad is None or bad.exit_code == 1


@pytest.mark.parametrize("kwargs,message", [
    (dict(clip_padding_s=-1), "--clip-padding"),
    (dict(clips="c", clips_max_gb=0), "--clips-max-gb"),
    (dict(clips_max_gb=1.0), "give --clips DIR"),
    (dict(alerts=("ftp://host/x",)), "--alert"),
    (dict(alerts=("exec:",)), "exec: needs a command"),
    (dict(alerts=("mqtt:///topic",)), "names no host"),
    (dict(alerts=("exec:true",), alert_cooldown_s=-1), "--alert-cooldown"),
    (dict(alert_labels="Dog"), "give --alert URL"),
    (dict(privacy="Speech=2"), "within 0..1"),
    (dict(privacy="Speech=x"), "not a threshold"),
    (dict(privacy="=0.2"), "a label is missing"),
    (dict(min_snr_db=float("nan")), "--min-snr"),
])
def test_monitor_options_are_checked_where_they_live(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        MonitorOptions(**kwargs)


def test_bad_monitor_options_are_one_line_errors_before_any_work(tmp_path):
    res = run("tag", DEMO_CLIP, *MN04, "--store", tmp_path / "db.sqlite", "--privacy", "Not a label")
    assert res.exit_code == 1 and "--privacy: unknown AudioSet label" in res.output
    assert not (tmp_path / "db.sqlite").exists()
    res = run("listen", "--input", "-", *MN04, "--alert", "gopher://x")
    assert res.exit_code == 1 and "--alert 'gopher://x'" in res.output
    res = run("tag", DEMO_CLIP, *MN04, "--store", tmp_path / "db2.sqlite", "--engine", "ray", "--output-dir",
              tmp_path / "o")
    assert res.exit_code == 1 and "local engine" in res.output


def test_privacy_keeps_private_embeddings_out_of_npz(tmp_path):
    out = tmp_path / "out.npz"
    res = run("tag", DEMO_CLIP, *MN04, "-o", out, "--privacy", "Speech=0.2", "--quiet")
    assert res.exit_code == 0, res.output
    plain = tmp_path / "plain.npz"
    assert run("tag", DEMO_CLIP, *MN04, "-o", plain, "--quiet").exit_code == 0
    with np.load(out) as z, np.load(plain) as p:
        speech = list(z["labels"]).index("Speech")
        private = p["scores"][:, speech] >= 0.2
        assert private.any() and (~private).any()
        assert np.isnan(z["embeddings"][private]).all()
        np.testing.assert_array_equal(z["embeddings"][~private], p["embeddings"][~private])
        np.testing.assert_array_equal(z["scores"], p["scores"])


@needs_shared
def test_sigkill_mid_run_keeps_every_event_closed_before_it(tmp_path):
    """`tag --store` over a list of recordings, killed with SIGKILL once the first ones are stored: the database
    opens, passes SQLite's integrity check, and holds every event that had closed before the kill."""
    db = tmp_path / "db.sqlite"
    listing = tmp_path / "inputs.txt"
    links = []
    for k in range(40):  # 40 recordings (the list keeps each path once)
        links.append(tmp_path / f"mix{k:02d}.wav")
        links[-1].symlink_to(LONG_MIX)
    listing.write_text("\n".join(map(str, links)) + "\n")
    cmd = [sys.executable, "-m", "streamtag", "tag", str(listing), *MN04, "--store", str(db), "-o",
           str(tmp_path / "out.jsonl"), "--quiet"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
    before: list = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            try:
                runs = DetectionStore(db).runs()
            except Exception:  # noqa: BLE001 - the file may still be being created
                runs = []
            if len(runs) >= 3:
                before = list(DetectionStore(db).events())
                break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert len({r["run_id"] for r in before}) >= 2
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    after = list(DetectionStore(db).events())
    assert after[:len(before)] == before
    runs = DetectionStore(db).runs()
    assert runs[-1]["ended_utc"] is None and all(r["ended_utc"] for r in runs[:-1])
