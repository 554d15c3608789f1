"""Jobs check every option once, in the library; the CLI and the Python API run the same job."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from streamtag.cli import main
from streamtag.engines.job import EngineOptions, RunSummary, TagJob
from streamtag.engines.live import ListenJob
from streamtag.engines.tag import run_tag_job
from streamtag.errors import ConfigError, LabelsError
from streamtag.models import ModelChoice, RunTarget, load_labels
from streamtag.outputs.recording import OutputOptions, OutputPlan, choose_formats
from tests.helpers import CLIP32, DEMO_CLIP, LABELS_CSV, MN04_WEIGHTS

LABELS = load_labels(LABELS_CSV)


@pytest.mark.parametrize("options, message", [
    (dict(formats=["jsonl,raven"]), "several formats need an output folder"),
    (dict(formats=["npz"]), "npz is binary"),
    (dict(formats=["mp4"]), "unknown format 'mp4'"),
    (dict(output="a.jsonl", output_dir="out"), "not both"),
    (dict(formats=["raven"], recordings=2), "raven holds one recording"),
    (dict(plot="p.png", recordings=2), "a plot draws one recording"),
    (dict(plot="x.txt"), "a plot is written as png, pdf"),
    (dict(frames=True), "NPZ output only"),
    (dict(top_k=0), "top-k must be at least 1, got 0"),
    (dict(include="Speech,Dgo"), "unknown AudioSet label 'Dgo'"),
    (dict(threshold=0.2, off_threshold=0.5, events=True), "0 <= off <= on <= 1"),
    (dict(median=2), "odd number of windows"),
])
def test_output_plan_refuses_what_cannot_be_written(options, message):
    with pytest.raises((ConfigError, LabelsError), match=message):
        recordings = options.pop("recordings", 1)
        OutputPlan.from_options(LABELS, OutputOptions(**options), recordings)


@pytest.mark.parametrize("requested, output, output_dir, expected", [
    ((), None, None, ["text"]), ((), "-", None, ["text"]), ((), None, "out", ["jsonl"]),
    ((), "x.csv", None, ["csv"]), ((), "x.labels.txt", None, ["audacity"]), ((), "x.txt", None, ["text"]),
    ((), "x.selection.table.txt", None, ["raven"]), ((), "x.npz", None, ["npz"]), ((), "x.dat", None, ["jsonl"]),
    (("npz,jsonl", "npz"), None, "out", ["npz", "jsonl"]),
])
def test_formats_follow_the_request_then_the_extension(requested, output, output_dir, expected):
    assert choose_formats(requested, output, output_dir) == expected


def test_plan_resolves_filters_and_event_settings():
    plan = OutputPlan.from_options(LABELS, OutputOptions(output_dir="out", formats=("csv", "raven"),
                                                         include="Speech,/m/0bt9lr", exclude="Speech", threshold=0.4,
                                                         top_k=3, median=5))
    dog = LABELS.index("Dog")
    assert plan.tags.allowed == (dog,) and plan.tags.top_k == 3 and plan.tags.threshold == 0.4
    assert (plan.settings.on, plan.settings.off, plan.settings.median, plan.settings.labels) == (0.4, 0.2, 5, (dog,))
    assert plan.needs_scores() == ["csv", "raven", "a label filter"]
    plan.check_model("mn04_as", has_scores=True)
    with pytest.raises(ConfigError, match="beats_iter3 gives embeddings only .* csv, raven, a label filter"):
        plan.check_model("beats_iter3", has_scores=False)


@pytest.mark.parametrize("make, message", [
    (lambda: TagJob.create([]), "no audio files found"),
    (lambda: TagJob.create([DEMO_CLIP], engine=EngineOptions(engine="ray")), "give an output folder"),
    (lambda: EngineOptions(engine="spark"), "unknown engine 'spark'"),
    (lambda: ModelChoice.parse(None, str(MN04_WEIGHTS)), "a weights file needs a model name"),
    (lambda: ModelChoice.parse("mn04_as,mn10_as", "a.pt"), "2 ensemble members but 1 weights files"),
    (lambda: ModelChoice.parse("mn04_as,"), "an empty model name"),
    (lambda: EngineOptions(shard_windows=0), "at least 1 window"),
    (lambda: TagJob.create([DEMO_CLIP], batch_size=0), "batch size must be a positive integer"),
    (lambda: RunTarget(precision="int8"), "precision must be one of fp32, fp16, bf16"),
    (lambda: RunTarget(runtime="tvm"), "unknown runtime 'tvm'"),
])
def test_tag_job_parts_refuse_bad_options(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_model_choice_is_the_one_parser_of_model_strings(tmp_path):
    assert ModelChoice.parse() == ModelChoice()
    one = ModelChoice.parse("mn04_as", "w.pt")
    assert one.members == ("mn04_as",) and one.weights == (str(Path("w.pt").resolve()),) and not one.is_ensemble
    both = ModelChoice.parse(" mn04_as , mn10_as ", "a.pt,")
    assert both.members == ("mn04_as", "mn10_as") and both.is_ensemble
    assert both.weights == (str(Path("a.pt").resolve()), None)


def test_listen_job_checks_before_opening_a_device():
    with pytest.raises(ConfigError, match="npz is binary"):
        ListenJob.create(format="npz")
    with pytest.raises(ConfigError, match="live output is"):
        ListenJob.create(format="raven", output="x.txt")
    with pytest.raises(ConfigError, match="duration must be positive"):
        ListenJob.create(duration=0)
    job = ListenJob.create(output="live.csv", top_k=3, threshold=0.1)
    assert job.format == "csv" and job.tags.top_k == 3 and job.model == ModelChoice()


def test_the_python_job_writes_what_the_cli_writes(tmp_path, mn04):
    job = TagJob.create([CLIP32, DEMO_CLIP], model=ModelChoice.parse("mn04_as", MN04_WEIGHTS), window=1.0, hop=0.5,
                        target=RunTarget("cpu"), labels=LABELS_CSV,
                        outputs=OutputOptions(formats=("jsonl", "csv"), events=True, output_dir=str(tmp_path / "py")))
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
    job = TagJob.create([bad, CLIP32], model=ModelChoice.parse("mn04_as"), window=1.0, hop=0.5,
                        target=RunTarget("cpu"), outputs=OutputOptions(output_dir=str(tmp_path / "out")))
    summary = run_tag_job(job)
    assert summary.completed == 1 and [f["path"] for f in summary.failed] == [str(bad)]
    assert "not a readable audio file" in summary.failed[0]["error"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{CLIP32.stem}.jsonl",
                                                                      f"{CLIP32.stem}.streamtag.json"]
