"""Jobs check every option once, in the library; the CLI and the Python API run the same job."""
import json

import pytest
from click.testing import CliRunner

from streamtag.cli import main
from streamtag.engines.job import ModelChoice, RunSummary, TagJob
from streamtag.engines.live import ListenJob
from streamtag.engines.tag import run_tag_job
from streamtag.errors import ConfigError, LabelsError
from streamtag.models import load_labels
from streamtag.outputs.recording import OutputPlan, choose_formats
from tests.helpers import CLIP32, DEMO_CLIP, LABELS_CSV, MN04_WEIGHTS

LABELS = load_labels(LABELS_CSV)


@pytest.mark.parametrize("options, message", [
    (dict(formats=["jsonl,raven"]), "several formats need an output folder"),
    (dict(formats=["npz"]), "npz is binary"),
    (dict(formats=["mp4"]), "unknown format 'mp4'"),
    (dict(output="a.jsonl", output_dir="out"), "not both"),
    (dict(formats=["raven"], recordings=2), "raven holds one recording"),
    (dict(plot="p.png", recordings=2), "a plot draws one recording"),
    (dict(frames=True), "NPZ output only"),
    (dict(top_k=0), "top-k must be at least 1, got 0"),
    (dict(include="Speech,Dgo"), "unknown AudioSet label 'Dgo'"),
    (dict(threshold=0.2, off_threshold=0.5, events=True), "0 <= off <= on <= 1"),
    (dict(median=2), "odd number of windows"),
])
def test_output_plan_refuses_what_cannot_be_written(options, message):
    with pytest.raises((ConfigError, LabelsError), match=message):
        OutputPlan.from_options(LABELS, **options)


@pytest.mark.parametrize("requested, output, output_dir, expected", [
    ((), None, None, ["text"]), ((), "-", None, ["text"]), ((), None, "out", ["jsonl"]),
    ((), "x.csv", None, ["csv"]), ((), "x.labels.txt", None, ["audacity"]), ((), "x.txt", None, ["text"]),
    ((), "x.selection.table.txt", None, ["raven"]), ((), "x.npz", None, ["npz"]), ((), "x.dat", None, ["jsonl"]),
    (("npz,jsonl", "npz"), None, "out", ["npz", "jsonl"]),
])
def test_formats_follow_the_request_then_the_extension(requested, output, output_dir, expected):
    assert choose_formats(requested, output, output_dir) == expected


def test_plan_resolves_filters_and_event_settings():
    plan = OutputPlan.from_options(LABELS, output_dir="out", formats=["csv", "raven"], include="Speech,/m/0bt9lr",
                                   exclude="Speech", threshold=0.4, top_k=3, median=5)
    dog = LABELS.index("Dog")
    assert plan.tags.allowed == (dog,) and plan.tags.top_k == 3 and plan.tags.threshold == 0.4
    assert (plan.settings.on, plan.settings.off, plan.settings.median, plan.settings.labels) == (0.4, 0.2, 5, (dog,))
    assert plan.needs_scores() == ["csv", "raven", "a label filter"]
    plan.check_model("mn04_as", has_scores=True)
    with pytest.raises(ConfigError, match="beats_iter3 gives embeddings only .* csv, raven, a label filter"):
        plan.check_model("beats_iter3", has_scores=False)


@pytest.mark.parametrize("options, message", [
    (dict(inputs=[]), "no audio files found"),
    (dict(engine="ray"), "give an output folder"),
    (dict(engine="spark"), "unknown engine 'spark'"),
    (dict(weights=str(MN04_WEIGHTS)), "a weights file needs a model name"),
    (dict(shard_windows=0), "at least 1 window"),
    (dict(batch_size=0), "batch size must be a positive integer"),
])
def test_tag_job_refuses_bad_options(options, message):
    options = {"inputs": [DEMO_CLIP], **options}
    with pytest.raises(ConfigError, match=message):
        TagJob.from_options(options.pop("inputs"), **options)


def test_listen_job_checks_before_opening_a_device():
    with pytest.raises(ConfigError, match="npz is binary"):
        ListenJob.from_options(format="npz")
    with pytest.raises(ConfigError, match="live output is"):
        ListenJob.from_options(format="raven", output="x.txt")
    with pytest.raises(ConfigError, match="duration must be positive"):
        ListenJob.from_options(duration=0)
    job = ListenJob.from_options(output="live.csv", top_k=3, threshold=0.1)
    assert job.format == "csv" and job.tags.top_k == 3 and job.model == ModelChoice()


def test_the_python_job_writes_what_the_cli_writes(tmp_path, mn04):
    options = dict(model="mn04_as", weights=str(MN04_WEIGHTS), window=1.0, hop=0.5, device="cpu", labels=LABELS_CSV,
                   formats=["jsonl", "csv"], events=True)
    job = TagJob.from_options([CLIP32, DEMO_CLIP], output_dir=str(tmp_path / "py"), **options)
    summary = run_tag_job(job)
    assert isinstance(summary, RunSummary) and (summary.files, summary.completed, summary.failed) == (2, 2, [])
    res = CliRunner().invoke(main, ["tag", str(CLIP32), str(DEMO_CLIP), "--model", "mn04_as", "--weights",
                                    str(MN04_WEIGHTS), "--window", "1", "--hop", "0.5", "--device", "cpu", "--labels",
                                    str(LABELS_CSV), "--format", "jsonl,csv", "--events", "--output-dir",
                                    str(tmp_path / "cli"), "--quiet"])
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in (tmp_path / "py").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "cli").iterdir()) and len(names) == 6
    for name in names:
        py, cli = (tmp_path / d / name for d in ("py", "cli"))
        if name.endswith(".streamtag.json"):
            assert json.loads(py.read_text()) == json.loads(cli.read_text())
        else:
            assert py.read_text() == cli.read_text(), name


def test_a_failing_file_is_in_the_summary_and_the_others_are_written(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF" + bytes(100))
    job = TagJob.from_options([bad, CLIP32], model="mn04_as", window=1.0, hop=0.5, device="cpu",
                              output_dir=str(tmp_path / "out"))
    summary = run_tag_job(job)
    assert summary.completed == 1 and [f["path"] for f in summary.failed] == [str(bad)]
    assert "not a readable audio file" in summary.failed[0]["error"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{CLIP32.stem}.jsonl",
                                                                      f"{CLIP32.stem}.streamtag.json"]
