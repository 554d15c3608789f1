"""A first afternoon's rough edges, each fixed: events on fine windows, plots and outputs where asked, --force,
a 0-byte file, a reader that goes away."""
from __future__ import annotations

import json
import os

import numpy as np
import soundfile as sf
from click.testing import CliRunner

from streamtag.cli import main
from tests.helpers import DEMO_CLIP

FAST = ["--model", "mn04_as"]


def events_of(text: str) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {}
    for line in text.splitlines():
        e = json.loads(line)
        out.setdefault(e["label"], []).append((e["onset_s"], e["offset_s"]))
    return out


def test_events_use_fine_windows_by_default_and_keep_speech_and_dog_apart():
    """The demo clip is speech, then a dog. 10 s windows hear both in every window, so both events run over the
    whole clip; the events' default 1 s / 0.5 s windows separate them, and the run says which windows it used."""
    res = CliRunner().invoke(main, ["tag", str(DEMO_CLIP), *FAST, "--events", "--format", "jsonl"])
    assert res.exit_code == 0, res.stderr
    assert "events: 1 s windows with a 0.5 s hop" in res.stderr
    fine = events_of(res.stdout)
    (speech,), (dog,) = fine["Speech"], fine["Dog"]
    assert speech[1] <= dog[0], (speech, dog)  # one after the other, as in the clip

    coarse_run = CliRunner().invoke(main, ["tag", str(DEMO_CLIP), *FAST, "--events", "--format", "jsonl",
                                           "--window", "10", "--hop", "2.5"])
    assert coarse_run.exit_code == 0
    assert "events from 10 s windows: onsets and offsets are only as fine as the 2.5 s hop" in coarse_run.stderr
    coarse = events_of(coarse_run.stdout)
    (speech10,), (dog10,) = coarse["Speech"], coarse["Dog"]
    assert speech10[1] > dog10[0]  # the coarse windows blur them together: why the default changed


def test_window_tags_keep_the_10_s_default_without_a_notice():
    res = CliRunner().invoke(main, ["tag", str(DEMO_CLIP), *FAST, "--format", "jsonl"])
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert rows[0]["end_s"] - rows[0]["start_s"] == 10.0 and "events" not in res.stderr


def test_a_plot_goes_where_it_is_asked_even_with_an_output_folder(tmp_path):
    res = CliRunner().invoke(main, ["tag", str(DEMO_CLIP), *FAST, "--window", "2", "--hop", "1",
                                    "--plot", str(tmp_path / "long.png"), "--output-dir", str(tmp_path / "out")])
    assert res.exit_code == 0, res.stderr
    assert (tmp_path / "long.png").stat().st_size > 1000
    assert not list((tmp_path / "out").glob("*.png"))


def test_several_recordings_get_one_plot_each_in_the_folder_and_are_told_so(tmp_path):
    wave, rate = sf.read(DEMO_CLIP)
    for name in ("a.wav", "b.wav"):
        sf.write(tmp_path / name, wave[: rate * 4], rate)
    res = CliRunner().invoke(main, ["tag", str(tmp_path / "a.wav"), str(tmp_path / "b.wav"), *FAST, "--window", "2",
                                    "--hop", "1", "--plot", "p.png", "--output-dir", str(tmp_path / "out")])
    assert res.exit_code == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["a.png", "b.png"]
    assert f"plots: one per recording, {tmp_path / 'out' / '<recording>'}.png" in res.stderr


def test_an_unknown_output_extension_is_refused_unless_a_format_is_given(tmp_path):
    res = CliRunner().invoke(main, ["tag", str(DEMO_CLIP), *FAST, "-o", str(tmp_path / "out.xyz")])
    assert res.exit_code == 1 and not (tmp_path / "out.xyz").exists()
    (line,) = res.stderr.splitlines()
    assert line.startswith(f"streamtag: error: {tmp_path / 'out.xyz'}: the format follows the output's extension")
    assert "give --format" in line
    res = CliRunner().invoke(main, ["tag", str(DEMO_CLIP), *FAST, "-o", str(tmp_path / "out.xyz"), "--format", "jsonl"])
    assert res.exit_code == 0 and json.loads((tmp_path / "out.xyz").read_text().splitlines()[0])["window"] == 0


def test_an_output_file_in_a_missing_folder_is_refused_before_any_work(tmp_path):
    dest = tmp_path / "no" / "such" / "x.jsonl"
    res = CliRunner().invoke(main, ["tag", str(DEMO_CLIP), *FAST, "-o", str(dest)])
    assert res.exit_code == 1 and not (tmp_path / "no").exists()
    assert res.stderr == (f"streamtag: error: cannot write {dest}: the folder {dest.parent} does not exist "
                          f"(create it, or give --output-dir, which is created)\n")


def test_force_redoes_recordings_a_rerun_would_skip(tmp_path):
    args = ["tag", str(DEMO_CLIP), *FAST, "--window", "5", "--hop", "5", "--output-dir", str(tmp_path), "--progress"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.stderr
    sidecar = next(tmp_path.glob("*.streamtag.json"))
    os.utime(sidecar, (1, 1))
    again = CliRunner().invoke(main, args)
    assert "(1 already complete)" in again.stderr and sidecar.stat().st_mtime == 1
    forced = CliRunner().invoke(main, [*args, "--force"])
    assert forced.exit_code == 0 and "already complete" not in forced.stderr
    assert sidecar.stat().st_mtime > 1


def test_a_0_byte_file_says_so_in_one_line(tmp_path):
    (tmp_path / "zero.wav").touch()
    res = CliRunner().invoke(main, ["tag", str(tmp_path / "zero.wav"), *FAST])
    assert res.exit_code == 1
    assert res.stderr == f"streamtag: error: {tmp_path / 'zero.wav'}: empty file (0 bytes)\n"


def test_raven_begin_path_is_absolute_from_a_relative_input(tmp_path, monkeypatch):
    import shutil
    monkeypatch.chdir(tmp_path)
    shutil.copy(DEMO_CLIP, tmp_path / "clip.flac")
    res = CliRunner().invoke(main, ["tag", "clip.flac", *FAST, "--format", "raven", "--output-dir", "out"])
    assert res.exit_code == 0, res.stderr
    table = next((tmp_path / "out").glob("*.selection.table.txt")).read_text().splitlines()
    column = table[0].split("\t").index("Begin Path")
    assert {row.split("\t")[column] for row in table[1:]} == {str(tmp_path / "clip.flac")}
    assert np.all([len(row.split("\t")) == len(table[0].split("\t")) for row in table])


def test_a_plot_may_go_into_the_output_folder_the_run_creates(tmp_path):
    out = tmp_path / "new"
    res = CliRunner().invoke(main, ["tag", str(DEMO_CLIP), *FAST, "--window", "5", "--hop", "5",
                                    "--plot", str(out / "p.png"), "--output-dir", str(out)])
    assert res.exit_code == 0, res.stderr
    assert (out / "p.png").is_file()
    missing = CliRunner().invoke(main, ["tag", str(DEMO_CLIP), *FAST, "--plot", str(tmp_path / "no" / "p.png")])
    assert missing.exit_code == 1 and "the folder" in missing.stderr and "does not exist" in missing.stderr


def test_the_first_run_of_a_model_says_it_is_preparing_it_once(tmp_path, monkeypatch):
    """The export at a model's first use takes seconds: where progress is shown (a terminal, or --progress) one
    notice comes before it, none once it is cached; scripts reading stderr see no such line."""
    monkeypatch.setenv("STREAMTAG_HOME", str(tmp_path / "fresh-home"))  # no export cache at all
    args = ["tag", str(DEMO_CLIP), *FAST, "--window", "3", "--hop", "3", "--progress"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.stderr
    assert first.stderr.splitlines()[0] == (f"streamtag: preparing mn04_as for this CPU, once: an OpenVINO export for "
                                            f"3 s windows, kept in {tmp_path / 'fresh-home' / 'compiled'}")
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and "preparing" not in again.stderr
    monkeypatch.setenv("STREAMTAG_HOME", str(tmp_path / "other-home"))
    plain = CliRunner().invoke(main, args[:-1])  # not a terminal, no --progress: it exports without a word
    assert plain.exit_code == 0 and plain.stderr == ""
