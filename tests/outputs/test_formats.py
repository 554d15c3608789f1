"""Event files in the conventions of Audacity and Raven (parsed back), evaluation, the heat map, filters."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from streamtag.cli import main
from streamtag.models import load_labels
from streamtag.outputs.detections import RAVEN_COLUMNS
from streamtag.outputs.evaluation import Segment, event_scores, overall
from streamtag.outputs.events import Event
from streamtag.outputs.plot import plot_scores
from tests.helpers import DEMO_CLIP, LABELS_CSV, LONG_MIX, MN04_WEIGHTS, needs_shared

# (recording, its duration, labels its events must include)
RECORDINGS = {"demo": (DEMO_CLIP, 12.5, {"Speech", "Dog"}),
              "mix": (LONG_MIX, 60.0, {"Speech", "Dog", "Music", "Baby cry, infant cry"})}


def timeline() -> list[dict]:
    return list(csv.DictReader(open(LONG_MIX.with_suffix(".timeline.csv"))))


def tag_all_formats(path, out):
    res = CliRunner().invoke(main, ["tag", str(path), "--model", "mn04_as", "--weights", str(MN04_WEIGHTS),
                                    "--labels", str(LABELS_CSV), "--window", "1", "--hop", "0.5", "--events",
                                    "--format", "jsonl,csv,audacity,raven,npz", "--output-dir", str(out),
                                    "--plot", str(out / f"{path.stem}.png"), "--quiet"])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module", params=["demo", pytest.param("mix", marks=needs_shared)])
def outputs(request, tmp_path_factory):
    """(output folder, file stem, duration, expected labels) of one recording tagged into every format."""
    path, duration, expected = RECORDINGS[request.param]
    return tag_all_formats(path, tmp_path_factory.mktemp(request.param)), path.stem, duration, expected


@pytest.fixture(scope="module")
def mix_outputs(tmp_path_factory):
    return tag_all_formats(LONG_MIX, tmp_path_factory.mktemp("mix"))


def test_audacity_labels_parse_back(outputs):
    out, stem, duration, _ = outputs
    lines = (out / f"{stem}.labels.txt").read_text().splitlines()
    assert lines
    for ln in lines:
        start, end, label = ln.split("\t")  # exactly three tab-separated fields, no header
        assert 0 <= float(start) < float(end) <= duration and label


def test_raven_table_parses_back_with_its_header(outputs):
    out, stem, _, _ = outputs
    with open(out / f"{stem}.selection.table.txt", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    assert rows[0] == RAVEN_COLUMNS
    body = [dict(zip(rows[0], r)) for r in rows[1:]]
    assert [int(r["Selection"]) for r in body] == list(range(1, len(body) + 1))
    assert all(r["View"] == "Spectrogram 1" and r["Channel"] == "1" for r in body)
    assert all(float(r["Begin Time (s)"]) < float(r["End Time (s)"]) for r in body)
    assert all(Path(r["Begin Path"]).stem == stem and float(r["High Freq (Hz)"]) == 16000 for r in body)


def test_events_jsonl_and_sidecar_record_the_model(outputs):
    out, stem, _, expected = outputs
    events = [json.loads(x) for x in (out / f"{stem}.events.jsonl").read_text().splitlines()]
    assert expected <= {e["label"] for e in events}
    assert all(e["model"] == "mn04_as" for e in events)
    meta = json.loads((out / f"{stem}.streamtag.json").read_text())
    assert meta["window_s"] == 1.0 and meta["events"]["on"] == 0.3
    assert (out / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_shared
def test_eval_against_the_timeline(mix_outputs, tmp_path):
    ref = tmp_path / "ref.tsv"
    ref.write_text("onset\toffset\tlabel\n" + "".join(
        f"{r['onset_s']}\t{r['offset_s']}\t{r['label'].split(';')[0]}\n" for r in timeline()))
    res = CliRunner().invoke(main, ["eval", str(mix_outputs / "long_mix_44k1.events.jsonl"), "-r", str(ref),
                                    "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["overall"]["tp"] >= 4 and report["Dog"]["f1"] == 1.0 and report["Speech"]["f1"] == 1.0
    res2 = CliRunner().invoke(main, ["eval", str(mix_outputs / "long_mix_44k1.labels.txt"), "-r", str(ref), "--json"])
    assert json.loads(res2.stdout)["overall"] == report["overall"]  # the same events from the Audacity file


@pytest.mark.parametrize("ref, est, kw, expected", [
    ([(1, 3, "a")], [(1.2, 3.1, "a")], {}, (1, 0, 0)),
    ([(1, 3, "a")], [(1.8, 3.1, "a")], {}, (0, 1, 1)),  # onset outside the 0.5 s collar
    ([(1, 3, "a")], [(1.2, 5.0, "a")], {}, (0, 1, 1)),  # offset outside max(collar, 20 %)
    ([(1, 3, "a")], [(1.2, 5.0, "a")], {"offsets": False}, (1, 0, 0)),
    ([(1, 3, "a")], [(1.0, 3.0, "a"), (1.1, 3.0, "a")], {}, (1, 1, 0)),  # one to one
    ([(1, 3, "a")], [(1.0, 3.0, "b")], {}, (0, 0, 1)),  # b is not in the reference: ignored
    ([(1, 3, "a")], [(1.0, 3.0, "b")], {"only_reference_labels": False}, (0, 1, 1)),
])
def test_event_based_counts(ref, est, kw, expected):
    tot = overall(event_scores([Segment(*r) for r in ref], [Segment(*e) for e in est], **kw))
    assert (tot.tp, tot.fp, tot.fn) == expected


def test_heat_map_of_a_one_hour_recording(tmp_path):
    labels = load_labels()
    k = 7200  # one hour at a 0.5 s hop
    rng = np.random.default_rng(0)
    scores = (rng.random((k, 527)) ** 8).astype(np.float32)
    start = np.arange(k) * 0.5
    ev = [Event("Dog", "/m/0bt9lr", 600.0, 660.0, 0.9, 0.8, 1200, 1320)]
    plot_scores(tmp_path / "hour.png", start, start + 1.0, scores, labels.names, ev, title="1 h")
    assert (tmp_path / "hour.png").stat().st_size > 10_000


def test_include_exclude_filter_window_tags_and_unknown_names_fail():
    base = ["tag", str(DEMO_CLIP), "--model", "mn04_as", "--weights", str(MN04_WEIGHTS), "--window", "10",
            "--hop", "5", "--format", "jsonl", "-o", "-", "-q"]
    res = CliRunner().invoke(main, base + ["--include", "Dog,/m/09x0r", "--top-k", "2"])
    assert res.exit_code == 0, res.output
    tags = {t["label"] for ln in res.stdout.splitlines() for t in json.loads(ln)["top"]}
    assert tags <= {"Dog", "Speech"} and tags
    res = CliRunner().invoke(main, base + ["--exclude", "Speech,Music"])
    tags = {t["label"] for ln in res.stdout.splitlines() for t in json.loads(ln)["top"]}
    assert "Speech" not in tags and "Music" not in tags
    res = CliRunner().invoke(main, base + ["--include", "Dgo"])
    assert res.exit_code == 1 and "unknown AudioSet label 'Dgo'; did you mean 'Dog'" in res.stderr


def test_several_formats_need_an_output_dir():
    res = CliRunner().invoke(main, ["tag", str(DEMO_CLIP), "--format", "jsonl,raven"])
    assert res.exit_code == 1 and "several formats need an output folder" in res.stderr
