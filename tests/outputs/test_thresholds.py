"""Per-class thresholds: parsing `--threshold` and `--thresholds FILE`, and their effect on window tags,
events, the sidecar and resume."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from streamtag.cli import main
from streamtag.errors import ConfigError, LabelsError
from streamtag.models import load_labels
from streamtag.outputs import TagFilter
from streamtag.outputs.events import EventDetector, EventSettings
from streamtag.outputs.recording import OutputOptions, OutputPlan
from streamtag.outputs.thresholds import ClassThreshold, Thresholds, given_thresholds, parse_thresholds, read_thresholds
from streamtag.pipeline.result import WindowResult
from streamtag.windows import WindowSpec
from tests.helpers import DEMO_CLIP

LABELS = load_labels()
DOG, SPEECH, MALE = LABELS.index("Dog"), LABELS.index("Speech"), LABELS.index("Male speech, man speaking")


@pytest.mark.parametrize("text, default, classes", [
    (None, None, []),
    (0.4, 0.4, []),
    ("0.3", 0.3, []),
    ("Dog=0.5,Speech=0.3", None, [(DOG, 0.5), (SPEECH, 0.3)]),
    ("0.2,Dog=0.5", 0.2, [(DOG, 0.5)]),
    ("Dog=0.5, 0.2", 0.2, [(DOG, 0.5)]),
    ("dog = 0.5", None, [(DOG, 0.5)]),  # names are matched without regard to case and spaces
    ("/m/0bt9lr=0.6", None, [(DOG, 0.6)]),  # a mid
    ("Male speech, man speaking=0.4,Dog=0.5", None, [(MALE, 0.4), (DOG, 0.5)]),  # a name with a comma
    ("Dog=0.5,Dog=0.7", None, [(DOG, 0.7)]),  # the last one wins
])
def test_threshold_option_parses_a_default_and_named_classes(text, default, classes):
    t = parse_thresholds(text, LABELS)
    assert t.default == default and [(c.index, c.on) for c in t.classes] == classes


@pytest.mark.parametrize("text, error, message", [
    ("Dgo=0.5", LabelsError, "did you mean 'Dog'"),
    ("Dog=1.5", ConfigError, "between 0 and 1"),
    ("Dog=x", ConfigError, "'x' is not a number"),
    ("Dog=nan", ConfigError, "between 0 and 1"),
    ("0.2,0.3", ConfigError, "one default score"),
    ("Speech", ConfigError, "'Speech' has no '=score'"),
    ("=0.5", ConfigError, "a label is missing"),
    ("-0.1", ConfigError, "between 0 and 1"),
])
def test_bad_threshold_options_are_refused_with_the_reason(text, error, message):
    with pytest.raises(error, match=message):
        parse_thresholds(text, LABELS)


def test_a_thresholds_file_has_rows_of_label_threshold_and_an_optional_off(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('label,threshold,off_threshold\n# a comment\nDog,0.5\n"Male speech, man speaking",0.4,0.1\n'
                    '\n/m/09x0r,0.3,\n', encoding="utf-8")
    t = read_thresholds(path, LABELS)
    assert t.default is None
    assert t.classes == (ClassThreshold(DOG, 0.5), ClassThreshold(MALE, 0.4, 0.1), ClassThreshold(SPEECH, 0.3))
    # the option overrides the file, class by class, and sets the default
    merged = given_thresholds(LABELS, "0.25,Dog=0.9", path)
    assert merged.default == 0.25
    assert {c.index: c.on for c in merged.classes} == {DOG: 0.9, MALE: 0.4, SPEECH: 0.3}


@pytest.mark.parametrize("body, message", [
    ("Dog,0.5\nDog,0.6\n", "row 2: 'Dog' is listed twice"),
    ("Dog\n", "row 1: expected label,threshold"),
    ("Dog,0.5,0.1,9\n", "got 4 fields"),
    ("Dog,0.3,0.5\n", "off-threshold 0.5 is above the threshold 0.3"),
    ("Dog,2\n", "between 0 and 1"),
    ("label,threshold\n", "no thresholds"),
    ("Dgo,0.5\n", "did you mean 'Dog'"),
])
def test_bad_thresholds_files_name_the_row_and_the_problem(tmp_path, body, message):
    path = tmp_path / "t.csv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises((ConfigError, LabelsError), match=message):
        read_thresholds(path, LABELS)


def test_a_missing_thresholds_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the thresholds file"):
        read_thresholds(tmp_path / "none.csv", LABELS)


def test_tag_filter_applies_each_classes_own_threshold():
    scores = np.zeros(527, np.float32)
    scores[[DOG, SPEECH, MALE]] = [0.6, 0.4, 0.2]
    assert TagFilter(5, 0.3).pick(scores) == [DOG, SPEECH]
    assert TagFilter(5, 0.3, per_class=((DOG, 0.7), (MALE, 0.1))).pick(scores) == [SPEECH, MALE]
    assert TagFilter(1, 0.0, per_class=((DOG, 0.7),)).pick(scores) == []  # the top 1 first, then thresholds


@pytest.mark.parametrize("off_threshold, file_off, expected", [
    (None, None, (0.6, 0.3)),  # half the class's own on
    (0.2, None, (0.6, 0.2)),  # the global off
    (0.9, None, (0.6, 0.6)),  # the global off, at most the class's on
    (None, 0.05, (0.6, 0.05)),  # the class's own off
])
def test_event_off_thresholds_per_class(tmp_path, off_threshold, file_off, expected):
    path = tmp_path / "t.csv"
    path.write_text(f"Dog,0.6,{'' if file_off is None else file_off}\n", encoding="utf-8")
    plan = OutputPlan.from_options(LABELS, OutputOptions(threshold=0.95, thresholds=path, off_threshold=off_threshold,
                                                         events=True))
    assert plan.settings.per_class == ((DOG,) + expected,)
    assert (plan.settings.on, plan.tags.threshold, plan.tags.per_class) == (0.95, 0.95, ((DOG, 0.6),))


def _windows(rows, hop=0.5):
    out = []
    for k, values in enumerate(rows):
        scores = np.zeros(527, np.float32)
        for label, score in values.items():
            scores[label] = score
        out.append(WindowResult(k, 0, 0, k * hop, k * hop + 1.0, scores, np.zeros(4, np.float32), "m", LABELS))
    return out


def test_events_open_and_close_at_each_classes_own_thresholds():
    rows = [{DOG: 0.45, SPEECH: 0.45}, {DOG: 0.45, SPEECH: 0.45}, {DOG: 0.2, SPEECH: 0.2}, {DOG: 0.0, SPEECH: 0.0}]
    settings = EventSettings(on=0.5, off=0.25, median=1, min_duration_s=0, labels=(DOG, SPEECH),
                             per_class=((DOG, 0.4, 0.1),))
    det = EventDetector(LABELS, settings, hop_s=0.5)
    events = [e for r in _windows(rows) for e in det.update(r)] + det.flush()
    # Dog opens at 0.45 (its on 0.4) and stays open at 0.2 (its off 0.1); Speech never reaches 0.5
    assert [(e.label, e.onset_s, e.offset_s) for e in events] == [("Dog", 0.0, 1.75)]
    with pytest.raises(ConfigError, match="0 <= off <= on <= 1"):
        EventSettings(per_class=((DOG, 0.3, 0.5),))


def test_the_sidecar_records_thresholds_and_resume_redoes_a_recording_when_they_change(tmp_path, isolated_home):
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["tag", str(DEMO_CLIP), "--model", "mn04_as", "--window", "1", "--hop", "0.5",
                                    "--output-dir", str(out), "--format", "jsonl", "--threshold", "0.2,Dog=0.5"])
    assert res.exit_code == 0, res.stderr
    meta = json.loads((out / f"{DEMO_CLIP.stem}.streamtag.json").read_text())
    assert meta["thresholds"] == {"windows": 0.2, "events_on": 0.2, "events_off": 0.1,
                                  "classes": {"Dog": {"on": 0.5, "off": 0.25}}}
    info = SimpleNamespace(labels=LABELS, window=WindowSpec.from_seconds(1.0, 0.5, 32000), model_name="mn04_as",
                           sample_rate=32000)

    def complete(threshold):
        plan = OutputPlan.from_options(LABELS, OutputOptions(formats=("jsonl",), output_dir=str(out), threshold=threshold))
        return plan.is_complete(DEMO_CLIP.stem, info)
    assert complete("0.2,Dog=0.5") and complete("Dog=0.5,0.2")
    assert not complete("0.2,Dog=0.6") and not complete("0.2") and not complete(None)


def _jsonl(res):
    assert res.exit_code == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines()]


def test_cli_thresholds_filter_window_tags_and_events_per_class(tmp_path, isolated_home):
    common = ["tag", str(DEMO_CLIP), "--model", "mn04_as", "--window", "1", "--hop", "0.5", "--format", "jsonl"]
    plain = _jsonl(CliRunner().invoke(main, common + ["--top-k", "10"]))
    speech = [t["score"] for row in plain for t in row["top"] if t["label"] == "Speech"]
    assert min(speech) < 0.7 < max(speech)  # the demo has Speech both above and below 0.7
    rows = _jsonl(CliRunner().invoke(main, common + ["--top-k", "10", "--threshold", "0.1,Speech=0.7"]))
    for row, before in zip(rows, plain):
        expected = [t for t in before["top"] if t["score"] >= (0.7 if t["label"] == "Speech" else 0.1)]
        assert row["top"] == expected

    events = _jsonl(CliRunner().invoke(main, common + ["--events"]))
    assert {"Speech", "Dog"} <= {e["label"] for e in events}
    path = tmp_path / "thresholds.csv"
    path.write_text("label,threshold\nDog,0.99\n", encoding="utf-8")
    events = _jsonl(CliRunner().invoke(main, common + ["--events", "--thresholds", str(path)]))
    assert "Dog" not in {e["label"] for e in events} and "Speech" in {e["label"] for e in events}

    res = CliRunner().invoke(main, common + ["--threshold", "Dgo=0.5"])
    assert res.exit_code == 1 and "unknown AudioSet label 'Dgo'; did you mean 'Dog'" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_listen_takes_the_same_thresholds():
    from streamtag.engines.live import ListenJob
    job = ListenJob.create(threshold="0.1,Dog=0.5")
    assert job.tags.threshold == 0.1 and job.tags.per_class == ((DOG, 0.5),)
    assert Thresholds().merged(Thresholds(0.3)).default == 0.3
