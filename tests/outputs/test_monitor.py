"""Monitor with a store, clips and the privacy gate over real audio (the demo clip: speech, then a dog)."""
import math

import numpy as np
import pytest
import soundfile as sf

from streamtag.errors import ConfigError
from streamtag.outputs.clips import ClipBuffer, ClipWriter
from streamtag.outputs.monitor import Monitor, NoiseFloor
from streamtag.outputs.privacy import PrivacyGate
from streamtag.outputs.store import DetectionStore
from tests.outputs.monitor_helpers import RATE, demo_audio, run, tagger


@pytest.fixture(scope="module")
def demo():
    return tagger(), demo_audio()


def test_clips_hold_the_stream_audio_of_each_event_plus_padding_with_private_parts_silent(demo, tmp_path):
    t, audio = demo
    store = DetectionStore(tmp_path / "db.sqlite")
    privacy = PrivacyGate(t.labels, {"Speech": 0.2})
    mon = Monitor(t.labels, source="demo", store=store, clips=ClipWriter(tmp_path / "clips", padding_s=1.0),
                  privacy=privacy)
    run(t, audio, mon)
    dets = mon.stats.detections
    assert {"Speech", "Dog"} <= {d.label for d in dets}
    rows = {r["id"]: r for r in DetectionStore(tmp_path / "db.sqlite").events()}
    assert len(rows) == len(dets)
    end_s = len(audio) / RATE
    spans = privacy.spans(0, end_s)
    assert spans, "the speech windows are private"
    for d in dets:
        row = rows[d.id]
        assert row["clip_path"] == d.clip_path and row["label"] == d.label and bool(row["redacted"]) == d.redacted
        clip, sr = sf.read(d.clip_path, dtype="float32")
        assert sr == RATE
        a, b = max(0.0, d.onset_s - 1.0), min(end_s, d.offset_s + 1.0)
        assert len(clip) == pytest.approx((b - a) * RATE, abs=2)
        expected = audio[int(round(a * RATE)):int(round(a * RATE)) + len(clip)].copy()
        silenced = np.zeros(len(clip), bool)
        for s0, s1 in spans:
            silenced[max(0, int(np.floor((s0 - a) * RATE))):max(0, int(np.ceil((s1 - a) * RATE)))] = True
        assert d.redacted == bool(silenced.any())
        assert np.all(clip[silenced] == 0)
        np.testing.assert_allclose(clip[~silenced], expected[~silenced], atol=1 / 32768 + 1e-6)
    speech = [d for d in dets if d.label == "Speech"]
    assert speech and all(d.redacted for d in speech)


def test_levels_noise_floor_and_min_snr(demo, tmp_path):
    t, audio = demo
    quiet = audio * np.float32(10 ** (-30 / 20))  # the same scene 30 dB quieter, after 12 s of the loud one
    both = np.concatenate([audio, quiet])
    mon = Monitor(t.labels, source="demo", noise_floor=NoiseFloor(seconds=600, percentile=10))
    results, _ = run(t, both, mon)
    for r in results[:5]:
        x = np.concatenate([both, np.zeros(RATE, np.float32)])[r.start_sample:r.end_sample].astype(np.float64)
        assert r.level_db == pytest.approx(10 * math.log10(max(np.mean(x * x), 1e-12)), abs=1e-3)
    assert all(d.snr_db == pytest.approx(d.level_db - d.noise_floor_db) for d in mon.stats.detections)
    loud_snr = min(d.snr_db for d in mon.stats.detections)
    t2 = tagger()
    strict = Monitor(t2.labels, source="demo", min_snr_db=loud_snr + 0.01)
    run(t2, both, strict)
    assert strict.stats.below_snr >= 1
    assert all(d.snr_db >= loud_snr + 0.01 for d in strict.stats.detections)
    assert strict.stats.events + strict.stats.below_snr == mon.stats.events


def test_clip_folder_is_bounded_oldest_first_and_the_database_says_so(demo, tmp_path):
    t, audio = demo
    store = DetectionStore(tmp_path / "db.sqlite")
    clips = ClipWriter(tmp_path / "clips", padding_s=0.5, max_bytes=1)  # keeps only the newest clip
    mon = Monitor(t.labels, source="demo", store=store, clips=clips)
    run(t, audio, mon)
    rows = list(DetectionStore(tmp_path / "db.sqlite").events())
    assert len(rows) >= 2
    on_disk = list((tmp_path / "clips").glob("*.flac"))
    assert len(on_disk) == 1 and clips.deleted == len(rows) - 1
    kept = [r for r in rows if r["clip_path"]]
    assert [r["clip_path"] for r in kept] == [str(on_disk[0])]
    assert sum(r["clip_deleted"] for r in rows) == len(rows) - 1


def test_privacy_guard_hides_private_embeddings_and_needs_known_labels(demo):
    t, audio = demo
    gate = PrivacyGate(t.labels, ["Speech"])
    seen = []
    guarded = gate.guard(seen.append)
    results, _ = run(t, audio[:4 * RATE], lambda r: guarded(r))
    private = [gate.is_private(r) for r in results]
    assert any(private)
    for r, s, p in zip(results, seen, private):
        assert np.isnan(s.embedding).all() == p
        if not p:
            np.testing.assert_array_equal(s.embedding, r.embedding)
    with pytest.raises(ConfigError, match="privacy label"):
        PrivacyGate(t.labels, ["Not a label at all"])


@pytest.mark.parametrize("start,n,cap_s,expect_first", [(0, 100, 1.0, 0), (0, 40000, 1.0, 8000),
                                                       (5000, 100, 1.0, 0)])
def test_clip_buffer_keeps_the_latest_audio_by_absolute_sample(start, n, cap_s, expect_first):
    buf = ClipBuffer(cap_s)
    x = np.arange(n, dtype=np.float32)
    buf.write(start, x, 32000)
    got, first = buf.read(0, start + n)
    assert first == expect_first
    np.testing.assert_array_equal(got[-min(n, 32000):], x[-min(n, 32000):])
    if start:
        assert buf.read(0, start)[0].tolist() == [0.0] * min(start, 32000)
