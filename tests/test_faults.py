"""Faults a real machine throws at a run: a full disk, a read-only folder, termination signals, SIGKILL and
resume, huge settings under a memory limit, foreign dtypes, abandoned iterators, closed pipes, the umask.

Each test fails on the code before the reliability work (issue #19) and passes after it.
"""
import errno
import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from streamtag import Tagger
from streamtag.cli import main
from streamtag.errors import ConfigError
from streamtag.models import get_spec, load_labels
from streamtag.outputs import sinks
from tests.helpers import DEMO_CLIP, LABELS_CSV, ROOT

FAST = ["--model", "mn04_as", "--window", "1", "--hop", "0.5", "--device", "cpu"]


def _env(home):
    return dict(os.environ, STREAMTAG_HOME=str(home), PYTHONPATH=str(ROOT))


def _partials(folder):
    return sorted(p.name for p in folder.rglob("*.partial"))


def _recordings(folder, n=3, seconds=20.0, rate=16000):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    demo, sr = sf.read(DEMO_CLIP, dtype="float32")
    for i in range(n):
        x = np.tile(demo, (int(seconds * sr / len(demo)) + 1, 1))[: int(seconds * sr)]
        sf.write(folder / f"rec{i:02d}.wav", x * (0.5 + 0.5 * rng.random()), sr)
    return sorted(folder.iterdir())


# -- a full disk and a read-only folder --------------------------------------------------------------------------
class _FullDisk(io.RawIOBase):
    """A file descriptor on a disk with `room` bytes left: writes past it fail with ENOSPC."""

    def __init__(self, fd, room):
        self.fd, self.room = fd, room

    def writable(self):
        return True

    def write(self, b):
        if len(b) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(b)
        return os.write(self.fd, b)

    def close(self):
        if not self.closed:
            os.close(self.fd)
        super().close()


def _fill_disk(monkeypatch, room, only=""):
    """Output files whose name contains `only` go to a disk with `room` bytes left."""
    real_fdopen, real_mkstemp = os.fdopen, sinks.tempfile.mkstemp
    names = {}

    def mkstemp(*args, **kw):
        fd, path = real_mkstemp(*args, **kw)
        names[fd] = path
        return fd, path

    def fdopen(fd, mode="r", **kw):
        path = names.pop(fd, None)  # only output files (AtomicFile's temporary files) are on the full disk
        if path is None or only not in os.path.basename(path):
            return real_fdopen(fd, mode, **kw)
        raw = io.BufferedWriter(_FullDisk(fd, room))
        return raw if "b" in mode else io.TextIOWrapper(raw, **kw)
    monkeypatch.setattr(sinks.tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(sinks.os, "fdopen", fdopen)


@pytest.mark.parametrize("fmt", ["npz", "jsonl", "npz,jsonl"])
def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(tmp_path, isolated_home, monkeypatch, fmt):
    _fill_disk(monkeypatch, room=2000)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["tag", str(DEMO_CLIP), *FAST, "--format", fmt, "--output-dir", str(out)])
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert lines[-1].startswith("streamtag: error: cannot write ") and lines[-1].endswith(
        "No space left on device"), res.stderr
    assert str(out) in lines[-1] and "Traceback" not in res.stderr
    assert _partials(out) == [] and not list(out.glob("*.streamtag.json"))


def test_a_full_disk_keeps_the_recordings_finished_before_it(tmp_path, isolated_home, monkeypatch):
    files = _recordings(tmp_path / "in", n=3, seconds=4)
    _fill_disk(monkeypatch, room=1000, only="rec01")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["tag", *map(str, files), *FAST, "--format", "jsonl", "--output-dir", str(out)])
    assert res.exit_code == 1 and "cannot write" in res.stderr and "rec01.jsonl" in res.stderr
    assert (out / "rec00.jsonl").is_file() and (out / "rec00.streamtag.json").is_file()
    assert not (out / "rec01.jsonl").exists() and _partials(out) == []


def test_a_full_disk_on_a_single_output_file(tmp_path, isolated_home, monkeypatch):
    _fill_disk(monkeypatch, room=500)
    res = CliRunner().invoke(main, ["tag", str(DEMO_CLIP), *FAST, "--output", str(tmp_path / "x.jsonl")])
    assert res.exit_code == 1 and "No space left on device" in res.stderr and "Traceback" not in res.stderr
    assert _partials(tmp_path) == []


def test_a_read_only_output_folder_is_one_line(tmp_path, isolated_home, monkeypatch):
    def read_only(*args, **kw):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))
    monkeypatch.setattr(sinks.tempfile, "mkstemp", read_only)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["tag", str(DEMO_CLIP), *FAST, "--format", "jsonl", "--output-dir", str(out)])
    assert res.exit_code == 1
    assert res.stderr.strip().splitlines()[-1] == \
        f"streamtag: error: cannot write {out / 'speech_dog_12s.jsonl'}: Read-only file system"


def test_discard_removes_the_temporary_file_even_when_closing_fails(tmp_path):
    f = sinks.AtomicFile(tmp_path / "x.jsonl")
    f.file.write("x" * 100)
    real = f.file
    f.file = io.TextIOWrapper(io.BufferedWriter(_FullDisk(os.dup(real.fileno()), 10)))
    f.file.write("y" * 100)
    f.discard()  # the flush inside close() fails: the file is removed all the same
    real.close()
    assert _partials(tmp_path) == [] and not (tmp_path / "x.jsonl").exists()


# -- stale temporary files ---------------------------------------------------------------------------------------
def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temporary_files_of_dead_runs_are_removed_by_the_next_run(tmp_path, isolated_home):
    out = tmp_path / "out"
    out.mkdir()
    host = socket.gethostname().replace(".", "-")
    stale = out / f".speech_dog_12s.jsonl.{host}-{_dead_pid()}.abc123.partial"
    live = out / f".other.jsonl.{host}-{os.getpid()}.def456.partial"  # a run still going (this process)
    foreign = out / ".notes.partial"  # not of streamtag's naming
    for p in (stale, live, foreign):
        p.write_text("half a file")
    res = CliRunner().invoke(main, ["tag", str(DEMO_CLIP), *FAST, "--format", "jsonl", "--output-dir", str(out)])
    assert res.exit_code == 0, res.stderr
    assert not stale.exists() and live.exists() and foreign.exists()
    assert "removed 1 temporary file(s) left by an interrupted run" in res.stderr


# -- signals, SIGKILL and resume --------------------------------------------------------------------------------
def _start(args, home, **kw):
    return subprocess.Popen([sys.executable, "-m", "streamtag", *args], env=_env(home), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _wait_for(predicate, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_termination_signals_keep_finished_recordings_and_resume_completes(tmp_path, isolated_home, sig, code):
    files = _recordings(tmp_path / "in", n=4, seconds=240)
    out = tmp_path / "out"
    args = ["tag", str(tmp_path / "in"), *FAST, "--format", "jsonl,npz", "--output-dir", str(out)]
    p = _start(args, isolated_home)
    _wait_for(lambda: (out / "rec00.streamtag.json").exists() or p.poll() is not None)
    p.send_signal(sig)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == code, stderr
    assert stderr.strip().splitlines()[-1] == "streamtag: interrupted"
    assert "Traceback" not in stderr
    done = sorted(f.name for f in out.glob("*.streamtag.json"))
    assert 1 <= len(done) < len(files)  # finished recordings stay, the interrupted one is absent
    for name in done:
        stem = name.split(".")[0]
        assert (out / f"{stem}.jsonl").is_file() and (out / f"{stem}.npz").is_file()
    assert _partials(out) == []
    res = subprocess.run([sys.executable, "-m", "streamtag", *args], env=_env(isolated_home), capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert len(list(out.glob("*.streamtag.json"))) == len(files)
    assert res.stderr.count("are complete (same settings); skipped") == len(done)  # resumed, not redone


def test_sigterm_commits_the_complete_lines_of_a_single_output_file(tmp_path, isolated_home):
    (tmp_path / "in").mkdir()
    demo, sr = sf.read(DEMO_CLIP, dtype="float32")
    sf.write(tmp_path / "in" / "long.wav", np.tile(demo, (30, 1)), sr)  # 6 minutes
    dest = tmp_path / "x.jsonl"
    p = _start(["tag", str(tmp_path / "in" / "long.wav"), *FAST, "--output", str(dest)], isolated_home)
    _wait_for(lambda: any(tmp_path.glob(".x.jsonl.*.partial")) and
              next(tmp_path.glob(".x.jsonl.*.partial")).stat().st_size > 5000)
    p.send_signal(signal.SIGTERM)
    _, stderr = p.communicate(timeout=60)
    assert p.returncode == 143, stderr
    rows = [json.loads(ln) for ln in dest.read_text().splitlines()]  # every line complete
    assert rows and [r["window"] for r in rows] == list(range(len(rows)))
    assert _partials(tmp_path) == []


def _outputs(folder):
    """Every output file's content (NPZ as arrays), by name."""
    got = {}
    for f in sorted(folder.iterdir()):
        if f.name.endswith(".npz"):
            with np.load(f) as z:
                got[f.name] = {k: z[k].tolist() for k in z.files}
        elif f.name.endswith(".jsonl"):
            got[f.name] = f.read_text()
        elif f.name.endswith(".streamtag.json"):
            got[f.name] = json.loads(f.read_text())["thresholds"]
    return got


@pytest.mark.slow
def test_kill_and_resume_soak_ends_complete_and_identical(tmp_path, isolated_home):
    """SIGKILL at 20 random moments of tagging, resuming each time: every output complete, identical to an
    uninterrupted run, and no temporary file left."""
    _recordings(tmp_path / "in", n=10, seconds=300)
    args = lambda out: ["tag", str(tmp_path / "in"), *FAST, "--format", "jsonl,npz",  # noqa: E731
                        "--output-dir", str(out), "--quiet"]
    ref = tmp_path / "ref"
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "streamtag", *args(ref)], env=_env(isolated_home), check=True, timeout=900)
    per_file = max(0.3, (time.monotonic() - t0 - 3.0) / 10)  # tagging one recording, start-up left out
    out = tmp_path / "out"
    rng = np.random.default_rng(19)
    kills = 0
    for _ in range(20):
        p = _start(args(out), isolated_home)
        tag = f"-{p.pid}."
        _wait_for(lambda: p.poll() is not None or any(tag in f.name for f in out.glob(".*.partial")), timeout=120)
        if p.poll() is not None:
            break  # nothing left to do
        time.sleep(float(rng.uniform(0.0, 1.2 * per_file)))  # a random moment while it tags (1 in 6 finish one)
        if p.poll() is None:
            p.kill()
            kills += 1
        p.communicate(timeout=60)
    before = len(list(out.glob("*.streamtag.json")))
    res = subprocess.run([sys.executable, "-m", "streamtag", *args(out)], env=_env(isolated_home),
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr
    print(f"soak: {kills} of 20 runs killed while tagging, {before} of 10 recordings complete before the last run")
    assert kills == 20
    assert _partials(out) == []
    assert _outputs(out) == _outputs(ref)


# -- huge settings under a memory limit --------------------------------------------------------------------------
LIMITED = textwrap.dedent("""
    import resource, sys
    from streamtag.cli import main
    import torch  # loaded before the limit: the limit is on what the run adds
    with open("/proc/self/status") as f:
        vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + 6 * 2**30, resource.RLIM_INFINITY))
    sys.argv = ["streamtag", *sys.argv[1:]]
    main()
""")


@pytest.mark.parametrize("args, message", [
    (["--window", "100000"], "a window of 100000 s needs about"),
    (["--batch-size", "100000"], None),  # a batch never holds more windows than the file has (24): fine
    (["--window", "1", "--hop", "5000", "--batch-size", "64"], None),  # one window per file: fine
])
def test_huge_settings_are_refused_before_allocating_under_a_memory_limit(tmp_path, isolated_home, args, message):
    script = tmp_path / "limited.py"
    script.write_text(LIMITED)
    dest = tmp_path / "x.jsonl"
    res = subprocess.run([sys.executable, str(script), "tag", str(DEMO_CLIP), *FAST, "--runtime", "torch", *args,
                          "--output", str(dest)],
                         env=_env(isolated_home), capture_output=True, text=True, timeout=300)
    if message is None:
        assert res.returncode == 0, res.stderr
        assert len(dest.read_text().splitlines()) == (24 if "100000" in args else 1)
        return
    assert res.returncode == 1, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("streamtag: error: ") and message in last and "available" in last, res.stderr
    assert not dest.exists() and _partials(tmp_path) == []


PEAK_RSS = textwrap.dedent("""
    import sys
    from streamtag.cli import main
    try:
        main(sys.argv[1:])
    except SystemExit as e:
        print("exit", e.code, file=sys.stderr)
    # VmHWM, not ru_maxrss: after fork and exec, ru_maxrss keeps the parent's (pytest's) high-water mark
    with open("/proc/self/status") as f:
        print("peak", next(line.split()[1] for line in f if line.startswith("VmHWM:")), file=sys.stderr)
""")


@pytest.mark.parametrize("window, budget", [("100000", None), ("2000", "4G")])
def test_a_window_far_longer_than_the_audio_is_refused_before_anything_is_built(tmp_path, isolated_home, window,
                                                                                   budget):
    """The default path (export, numpy front-end) checks one window's working set before it builds or exports the
    network: refused in one line, with the process never past 500 MB (it used to take the whole machine). `budget`:
    the memory a run may plan to use (STREAMTAG_MEMORY_LIMIT), as on a 16 GB machine; unset, a quarter of what is
    available."""
    dest = tmp_path / "x.jsonl"
    env = {**_env(isolated_home), **({"STREAMTAG_MEMORY_LIMIT": budget} if budget else {})}
    res = subprocess.run([sys.executable, "-c", PEAK_RSS, "tag", str(DEMO_CLIP), "--window", window, "-o", str(dest)],
                         env=env, capture_output=True, text=True, timeout=300)
    lines = res.stderr.strip().splitlines()
    assert lines[-2] == "exit 1", res.stderr
    assert lines[-3].startswith(f"streamtag: error: a window of {window} s needs about"), res.stderr
    assert "Traceback" not in res.stderr and not dest.exists()
    peak_mb = int(lines[-1].split()[1]) / 1024
    assert peak_mb < 500, f"peak RSS {peak_mb:.0f} MB"


@pytest.mark.parametrize("option, value, message", [
    ("--window", "1e30", "window must be at most"),
    ("--hop", "inf", "hop must be a finite number"),
    ("--median", "100001", "from 1 to 999"),
    ("--min-duration", "nan", "must be finite and >= 0 s"),
    ("--max-gap", "inf", "must be finite and >= 0 s"),
    ("--batch-size", "0", "batch size must be a positive integer"),
])
def test_absurd_values_are_named_in_one_line(isolated_home, option, value, message):
    res = CliRunner().invoke(main, ["tag", str(DEMO_CLIP), *FAST, option, value])
    assert res.exit_code == 1 and message in res.stderr and "Traceback" not in res.stderr


def test_a_live_buffer_beyond_memory_is_refused():
    with pytest.raises(ConfigError, match="a buffer of 1e\\+07 s needs about"):
        Tagger("mn04_as", window=1.0, hop=0.5, device="cpu", labels=LABELS_CSV, ring_seconds=1e7)


def test_bench_refuses_a_live_simulation_shorter_than_a_window(isolated_home):
    res = CliRunner().invoke(main, ["bench", "--duration", "2", "--repeats", "1", "--live-seconds", "5",
                                    "--no-baseline"])
    assert res.exit_code == 1
    assert "the live simulation must last at least one window and hop (12.5 s), got 5 s" in res.stderr


# -- dtypes and shapes -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tagger():
    return Tagger("mn04_as", window=1.0, hop=0.5, device="cpu", labels=LABELS_CSV)


def _scores(tagger, x, rate=32000):
    return np.stack([r.scores for r in tagger.tag_array(x, rate)])


def test_integer_pcm_is_scaled_as_soundfile_reads_it(tagger, tmp_path):
    rng = np.random.default_rng(0)
    pcm = (rng.standard_normal(32000 * 3) * 3000).clip(-32768, 32767).astype(np.int16)
    sf.write(tmp_path / "x.wav", pcm, 32000, subtype="PCM_16")
    as_read = sf.read(tmp_path / "x.wav", dtype="float32")[0]
    reference = _scores(tagger, as_read)
    np.testing.assert_allclose(_scores(tagger, pcm), reference, atol=1e-6)
    np.testing.assert_allclose(_scores(tagger, pcm.astype(np.int32) << 16), reference, atol=1e-6)
    np.testing.assert_allclose(_scores(tagger, as_read.astype(np.float64)), reference, atol=1e-6)
    u8 = (np.clip(as_read, -1, 127 / 128) * 128 + 128).astype(np.uint8)
    np.testing.assert_allclose(_scores(tagger, u8), _scores(tagger, (u8.astype(np.float32) - 128) / 128), atol=1e-6)
    # pushed block by block through feed(), as an application would
    got = []
    tagger.subscribe(got.append)
    try:
        for block in np.array_split(pcm, 7):
            tagger.feed(block, 32000)
        tagger.end()
        tagger.join()
    finally:
        tagger.unsubscribe(got.append)
    np.testing.assert_allclose(np.stack([r.scores for r in got]), reference, atol=1e-6)


@pytest.mark.parametrize("samples, message", [
    (np.zeros(32000, np.complex64), "got complex64"),
    (np.zeros(32000, bool), "got bool"),
    (np.array(["a"] * 100, dtype=object), "got object"),
    (np.zeros(32000, np.uint16), "got uint16"),
    (np.zeros((2, 32000), np.float32), "pass [frames, channels]"),
    (np.zeros((10, 10, 10), np.float32), "got shape (10, 10, 10)"),
])
def test_other_dtypes_and_shapes_are_refused(tagger, samples, message):
    with pytest.raises(ConfigError, match=message.replace("[", "\\[").replace("(", "\\(").replace(")", "\\)")):
        list(tagger.tag_array(samples, 32000))
    with pytest.raises(ConfigError):
        tagger.feed(samples, 32000)
    tagger.stop(wait=5.0)


def test_models_refuse_integer_and_numpy_waveforms():
    model = Tagger("mn04_as", window=1.0, hop=0.5, device="cpu", runtime="torch").model  # the torch model
    with pytest.raises(ConfigError, match="float waveforms"):
        model(torch.zeros(1, 32000, dtype=torch.int16))
    with pytest.raises(ConfigError, match="torch.from_numpy"):
        model(np.zeros((1, 32000), np.float32))
    with pytest.raises(ConfigError, match=r"\[batch, samples\], got shape \(32000,\)"):
        model(torch.zeros(32000))


# -- threads never outlive their owner's intent -----------------------------------------------------------------
SCENARIOS = {
    "break, then exit": "for r in tagger.tag_file(LONG):\n    break",
    "iterator kept, then exit": "it = tagger.tag_file(LONG)\nnext(it)",
    "iterator closed": "it = tagger.tag_file(LONG)\nnext(it)\nit.close()\nassert tagger.join(5)",
    "iterator garbage-collected": "it = tagger.tag_file(LONG)\nnext(it)\ndel it\nimport gc; gc.collect()",
    "Tagger dropped mid-run": ("import threading\nfirst = threading.Event()\ntagger.subscribe(lambda r: first.set())\n"
                               "tagger.start(FileSource(LONG))\nassert first.wait(60)\ndel tagger\n"
                               "import gc; gc.collect()"),
    "error in the caller's loop": ("try:\n    for r in tagger.tag_file(LONG):\n        raise ValueError('caller')\n"
                                   "except ValueError:\n    pass"),
    "stop() without join": "it = tagger.tag_file(LONG)\nnext(it)\ntagger.stop()",
}


@pytest.fixture(scope="module")
def long_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("long") / "long.wav"
    sf.write(path, np.random.default_rng(0).standard_normal(16000 * 1200).astype(np.float32) * 0.1, 16000)
    return path


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_abandoning_a_run_never_hangs_or_aborts_the_program(tmp_path, long_file, isolated_home, scenario):
    script = tmp_path / "app.py"
    script.write_text(f"from streamtag import Tagger, FileSource\nLONG = {str(long_file)!r}\n"
                      f"tagger = Tagger('mn04_as', window=1, hop=0.5, device='cpu')\n{SCENARIOS[scenario]}\n"
                      "print('done', flush=True)\n")
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, str(script)], env=_env(isolated_home), capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "done" and "terminate called" not in res.stderr
    assert time.monotonic() - t0 < 60


# -- pipes, standard input, formats ------------------------------------------------------------------------------
def test_a_closed_standard_output_is_one_line(tmp_path, long_file, isolated_home):
    p = _start(["tag", str(long_file), *FAST], isolated_home)
    p.stdout.readline()
    p.stdout.close()  # like `| head -1`
    stderr = p.stderr.read()
    p.wait(timeout=120)
    assert p.returncode == 1, stderr
    assert stderr.strip().splitlines()[-1].startswith("streamtag: error: cannot write standard output")
    assert "Traceback" not in stderr and "Exception ignored" not in stderr


def test_dash_reads_audio_from_standard_input(tmp_path, isolated_home):
    # both runs with the export cached (a first run exports through the torch front-end: equal within 1e-5)
    Tagger("mn04_as", window=1.0, hop=0.5, device="cpu").warm_up()
    with open(DEMO_CLIP, "rb") as f:
        res = subprocess.run([sys.executable, "-m", "streamtag", "tag", "-", *FAST, "--format", "jsonl"], stdin=f,
                             env=_env(isolated_home), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    direct = CliRunner().invoke(main, ["tag", str(DEMO_CLIP), *FAST, "--format", "jsonl"])
    strip = lambda text: [{k: v for k, v in json.loads(ln).items() if k != "file"} for ln in text.splitlines()]  # noqa
    assert strip(res.stdout) == strip(direct.stdout)
    empty = subprocess.run([sys.executable, "-m", "streamtag", "tag", "-", *FAST], stdin=subprocess.DEVNULL,
                           env=_env(isolated_home), capture_output=True, text=True, timeout=120)
    assert empty.returncode == 1 and "standard input held no audio" in empty.stderr


def test_an_m4a_without_ffmpeg_names_the_extra_and_how_to_convert(tmp_path, isolated_home, monkeypatch):
    import streamtag.audio.inputs as inputs
    monkeypatch.setattr(inputs, "ffmpeg_available", lambda: False)  # as without the [ffmpeg] extra
    clip = tmp_path / "voice memo.m4a"
    clip.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))
    res = CliRunner().invoke(main, ["tag", str(clip), *FAST])
    assert res.exit_code == 1
    assert "not AAC or ALAC in MP4: convert it first, e.g. ffmpeg -i 'voice memo.m4a' 'voice memo.flac'" in res.stderr
    assert "pip install 'streamtag[ffmpeg]'" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_a_broken_m4a_gives_both_readers_reasons(tmp_path, isolated_home):
    clip = tmp_path / "voice memo.m4a"
    clip.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))
    res = CliRunner().invoke(main, ["tag", str(clip), *FAST])
    assert res.exit_code == 1
    line = res.stderr.strip()
    assert "neither libsndfile (" in line and ") nor FFmpeg (" in line and len(line.splitlines()) == 1


# -- the umask ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_get_the_mode_open_would_give_them(tmp_path, isolated_home, umask, mode):
    out = tmp_path / "out"
    old = os.umask(umask)
    try:
        res = CliRunner().invoke(main, ["tag", str(DEMO_CLIP), *FAST, "--format", "jsonl,csv,npz,raven",
                                        "--output-dir", str(out), "--plot", "x.png"])
        single = tmp_path / "one.jsonl"
        res2 = CliRunner().invoke(main, ["tag", str(DEMO_CLIP), *FAST, "--output", str(single)])
    finally:
        os.umask(old)
    assert res.exit_code == 0 and res2.exit_code == 0, res.stderr + res2.stderr
    files = sorted(out.iterdir()) + [single]
    assert {f.suffix for f in files} >= {".jsonl", ".csv", ".npz", ".txt", ".png", ".json"}
    assert {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == {f.name: oct(mode) for f in files}


# -- forgiving names ---------------------------------------------------------------------------------------------
def test_names_are_matched_forgivingly_with_suggestions(isolated_home):
    assert get_spec("MN10-AS").name == "mn10_as" and get_spec(" dymn04_AS ").name == "dymn04_as"
    labels = load_labels()
    assert labels.index("bow_wow") == labels.index("Bow-wow") == labels.index("BOW WOW")
    assert labels.index("male_speech,_man_speaking") == labels.index("Male speech, man speaking")
    res = CliRunner().invoke(main, ["tag", str(DEMO_CLIP), "--model", "MN04-AS", "--device", "CPU",
                                    "--runtime", "TORCH", "--format", "JSONL", "--window", "1", "--hop", "0.5"])
    assert res.exit_code == 0, res.stderr
    res = CliRunner().invoke(main, ["tag", str(DEMO_CLIP), "--model", "mn04", "--device", "cpux"])
    assert res.exit_code == 1 and "did you mean" in res.stderr
    res = CliRunner().invoke(main, ["tag", str(DEMO_CLIP), *FAST[:2], "--device", "cpux"])
    assert res.exit_code == 1 and "unknown device 'cpux' (did you mean 'cpu'?" in res.stderr


@pytest.mark.parametrize("body, message", [
    ('{"onset_s": 1, "offset_s": 0.5, "label": "Dog"}\n', "line 1: needs 0 <= onset <= offset"),
    ('{"onset_s": 1, "label": "Dog"}\n', "line 1: not an event row"),
    ('{"onset_s": 1\n', "line 1: not an event row"),
    ("onset,offset,label\n0,1,Dog\nx,2,Cat\n", "line 3: onset 'x' and offset '2' must be numbers"),
    ("onset,offset,label\n0,nan,Dog\n", "line 2: needs 0 <= onset <= offset (finite)"),
    ("onset,offset,label\n0,1\n", "line 2: expected at least 3 columns, got 2"),
    ("onset,offset,label\n0,1,  \n", "line 2: the label is empty"),
    ("0\t1\tDog\n-1\t2\tCat\n", "line 2: needs 0 <= onset"),
])
def test_bad_event_files_name_the_line_and_the_problem(tmp_path, body, message):
    good = tmp_path / "good.csv"
    good.write_text("onset,offset,label\n0,1,Dog\n")
    bad = tmp_path / "bad.csv"
    bad.write_text(body)
    for args in (["eval", str(bad), "--reference", str(good)], ["eval", str(good), "--reference", str(bad)]):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 1 and message in res.stderr and "Traceback" not in res.stderr, res.stderr


def test_eval_refuses_a_collar_that_is_not_finite(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("onset,offset,label\n0,1,Dog\n")
    res = CliRunner().invoke(main, ["eval", str(good), "--reference", str(good), "--collar", "nan"])
    assert res.exit_code == 1 and "the collar must be finite" in res.stderr


def test_bench_refuses_threads_below_one(isolated_home):
    res = CliRunner().invoke(main, ["bench", "--duration", "2", "--threads", "0", "--no-live", "--no-baseline"])
    assert res.exit_code == 1 and "threads must be at least 1, got 0" in res.stderr


def test_a_binary_event_file_is_refused_in_one_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(bytes(range(256)))
    res = CliRunner().invoke(main, ["eval", str(bad), "--reference", str(bad)])
    assert res.exit_code == 1 and "cannot read as text" in res.stderr
