"""The detections database: writes, queries, migrations from older schemas, and a SIGKILL mid-run."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from streamtag.errors import OutputError
from streamtag.outputs.monitor import Detection
from streamtag.outputs.store import MIGRATIONS, SCHEMA_VERSION, DetectionStore
from tests.helpers import ROOT

T0 = datetime(2026, 5, 1, 5, 30, tzinfo=UTC)


def det(label, onset, dur=2.0, source="garden"):
    return Detection(label, "/m/x", onset, onset + dur, 0.9, 0.6, source, "mn04_as", "ab" * 32,
                     T0 + timedelta(seconds=onset), T0 + timedelta(seconds=onset + dur), -20.0, -22.0, -60.0, 40.0)


def test_events_are_stored_queried_and_summarised(tmp_path):
    s = DetectionStore(tmp_path / "d.sqlite")
    run = s.begin_run({"window": 1}, "garden", "mn04_as")
    ids = [s.add(det("Dog", 10)), s.add(det("Bird", 20, 1.0)), s.add(det("Dog", 30, 3.0, source="yard"))]
    s.set_clip(ids[0], "/clips/a.flac")
    s.end_run(windows=100, lost_samples=5, dropped_alerts=2)
    s.close()
    s = DetectionStore(tmp_path / "d.sqlite")
    rows = list(s.events())
    assert [r["label"] for r in rows] == ["Dog", "Bird", "Dog"] and all(r["run_id"] == run for r in rows)
    assert rows[0]["clip_path"] == "/clips/a.flac" and rows[0]["onset_utc"] == "2026-05-01T05:30:10.000000Z"
    assert [r["id"] for r in s.events(label="dog")] == [ids[0], ids[2]]
    assert [r["id"] for r in s.events(source="yard")] == [ids[2]]
    assert [r["id"] for r in s.events(since="2026-05-01T05:30:15Z", until="2026-05-01T07:30:25+02:00")] == [ids[1]]
    summary = {x.label: x for x in s.summary()}
    assert summary["Dog"].count == 2 and summary["Dog"].total_s == pytest.approx(5.0)
    assert summary["Dog"].first_utc < summary["Dog"].last_utc
    (r,) = s.runs()
    assert (r["windows"], r["lost_samples"], r["dropped_alerts"]) == (100, 5, 2) and r["ended_utc"]
    assert json.loads(r["settings"]) == {"window": 1}


@pytest.mark.parametrize("start_version", range(SCHEMA_VERSION))
def test_older_schemas_migrate_and_keep_their_rows(tmp_path, start_version):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    for version in range(start_version):
        for statement in MIGRATIONS[version]:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {start_version}")
    if start_version >= 1:
        conn.execute("INSERT INTO events (source, model, label, mid, onset_s, offset_s, peak, mean) "
                     "VALUES ('old', 'mn10_as', 'Dog', '/m/0bt9lr', 1.0, 2.0, 0.8, 0.5)")
    conn.commit()
    conn.close()
    s = DetectionStore(path)
    assert s.found_version == start_version
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    rows = list(s.events())
    if start_version >= 1:
        assert rows[0]["label"] == "Dog" and rows[0]["redacted"] == 0 and rows[0]["snr_db"] is None
    s.add(det("Bird", 5))
    assert len(list(s.events())) == len(rows) + 1


def test_a_newer_schema_is_refused_and_a_non_database_too(tmp_path):
    path = tmp_path / "new.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(OutputError, match="newer"):
        DetectionStore(path)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(OutputError, match="cannot open"):
        DetectionStore(junk)


CHILD = r"""
import sys, numpy as np
sys.path.insert(0, sys.argv[3])
from tests.outputs.monitor_helpers import demo_audio, tagger, RATE
from streamtag.outputs.monitor import Monitor
from streamtag.outputs.store import DetectionStore
t = tagger()
mon = Monitor(t.labels, source="loop", store=DetectionStore(sys.argv[1]),
              on_detection=lambda d: print(d.id, flush=True))
t.subscribe(mon)
audio = np.tile(demo_audio(), int(sys.argv[2]))
for _ in t.tag_array(audio, RATE):
    pass
print("finished", flush=True)
"""


def test_sigkill_mid_run_keeps_every_event_closed_before_it(tmp_path):
    db = tmp_path / "kill.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db), "200", str(ROOT)], stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ))
    reported = []
    for line in proc.stdout:
        if line.strip() == "finished":
            break
        reported.append(int(line))
        if len(reported) >= 6:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, "the run must still be going when it is killed"
    s = DetectionStore(db)
    stored = {r["id"] for r in s.events()}
    assert set(reported) <= stored
    assert stored <= set(range(1, max(stored) + 1)) and len(stored) == max(stored)  # no hole, no damage
    (run,) = s.runs()
    assert run["ended_utc"] is None  # killed: the run has no end
