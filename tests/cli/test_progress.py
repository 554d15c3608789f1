"""The progress line on a terminal: results on stdout stay clean rows, the line shows windows/s, a summary ends the run."""
import re
import shlex
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from streamtag.bench import synth_audio
from streamtag.cli import main
from tests.helpers import CLIP32, MN04_WEIGHTS

ROW = re.compile(r"^\s*\d+\.\d\d-\s*\d+\.\d\d s  ")


def test_a_terminal_shows_a_progress_line_that_never_breaks_result_rows(tmp_path, isolated_home):
    audio = synth_audio(Path(tmp_path / "f250.wav"), 250)
    cmd = shlex.join([sys.executable, "-m", "streamtag", "tag", str(audio), "--model", "mn04_as", "--weights",
                      str(MN04_WEIGHTS), "--window", "10", "--hop", "2.5", "--device", "cpu"])
    res = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:]
    pieces = [p.strip("\x1b[A ") for p in re.split(r"[\r\n]", res.stdout) if p.strip()]
    rows = [p for p in pieces if ROW.match(p)]
    bars = [p for p in pieces if "win/s" in p]
    assert len(rows) == 97 and all("%|" not in r and "win/s" not in r for r in rows)
    assert bars and all(b.startswith("f250.wav:") for b in bars) and any("real time" in b for b in bars)
    assert re.fullmatch(r"streamtag: 1 of 1 files, 97 windows, 250\.0 s of audio in [\d.]+ s \(\d+x real time\) "
                        r"-> stdout", pieces[-1]), pieces[-3:]


def test_no_progress_without_a_terminal_unless_asked(tmp_path):
    args = ["tag", str(CLIP32), "--model", "mn04_as", "--weights", str(MN04_WEIGHTS), "--window", "1", "--hop", "0.5",
            "--device", "cpu"]
    plain = CliRunner().invoke(main, args)
    assert plain.exit_code == 0 and plain.stderr == ""
    forced = CliRunner().invoke(main, [*args, "--progress", "--output-dir", str(tmp_path)])
    assert forced.exit_code == 0, forced.output
    assert re.search(r"streamtag: 1 of 1 files, 5 windows, 3\.0 s of audio in [\d.]+ s .* -> " + re.escape(str(tmp_path)),
                     forced.stderr)
    quiet = CliRunner().invoke(main, [*args, "--quiet", "--output-dir", str(tmp_path / "q")])
    assert quiet.exit_code == 0 and quiet.stderr == ""
