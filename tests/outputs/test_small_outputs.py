"""Small output details: Raven's Begin Path is absolute, the live view's heading reads as times."""
from __future__ import annotations

import csv
import io
import os

import numpy as np

from streamtag.models import load_labels
from streamtag.outputs.detections import write_raven
from streamtag.outputs.events import Event
from streamtag.outputs.live_view import LiveView
from streamtag.pipeline.result import WindowResult

LABELS = load_labels()


def events() -> list[Event]:
    return [Event(label="Dog", mid="/m/0bt9lr", onset_s=1.0, offset_s=2.5, peak=0.8, mean=0.6, first_window=2,
                  last_window=5)]


def raven_paths(source: str) -> list[str]:
    out = io.StringIO()
    write_raven(out, events(), source, 16000.0)
    return [row["Begin Path"] for row in csv.DictReader(io.StringIO(out.getvalue()), delimiter="\t")]


def test_raven_begin_path_is_absolute_for_a_relative_input(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert raven_paths("rec/a.wav") == [str(tmp_path / "rec" / "a.wav")]
    assert raven_paths(str(tmp_path / "b.wav")) == [str(tmp_path / "b.wav")]
    assert os.path.isabs(raven_paths("c.flac")[0])


def test_raven_begin_path_keeps_a_url():
    assert raven_paths("http://radio.example/live.mp3") == ["http://radio.example/live.mp3"]


def test_the_live_view_heading_gives_times_and_the_window_length():
    r = WindowResult(index=5, start_sample=80000, end_sample=112000, start_s=2.5, end_s=3.5,
                     scores=np.linspace(0, 1, len(LABELS), dtype=np.float32), embedding=np.zeros(4, np.float32),
                     model="mn04_as", labels=LABELS)
    heading = LiveView(io.StringIO(), title="pulse").render(r).splitlines()[0]
    assert heading == "pulse  2.5-3.5 s  (#5, 1 s window)"
