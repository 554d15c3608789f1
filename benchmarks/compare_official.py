"""streamtag against the official EfficientAT EATagger, as released, side by side: whole processes, alternating pairs.

    python benchmarks/compare_official.py --official-python ANCHOR_VENV/bin/python \\
        --weights ../shared/fixtures/efficientat/mn10_as_random.pt --pairs 3 --out out/compare_official

The official side is `../shared/anchors/run_eatagger.py` (EATagger at a425fdc with a local checkpoint, nothing
else changed) run by the Python of its own venv (`../shared/anchors/setup.sh`); no import shim, nothing of
streamtag in it. The streamtag side is `streamtag tag FILE --model M --weights W --window X --hop Y --format npz`.
The audio is `--audio` (default: the shared 60 s mix) repeated to `--seconds` (default 600), 44.1 kHz stereo,
written to a temporary folder. For each setting (`--settings 10:2.5,1:0.5`) both sides run once untimed (file
cache, numba's first compile, the OpenVINO export), then `--pairs` pairs, each the official process then the
streamtag one. Each process's wall time and peak RSS (its own rusage) are kept, the load average is read
before and after, and the largest score difference is taken between the two sides' last outputs. Writes
OUT.json and OUT.md (a table of every pair and a summary); run it on a quiet machine (nothing else running).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STREAMTAG_SHARED", ROOT.parent / "shared"))
OFFICIAL_RUNNER = SHARED / "anchors" / "run_eatagger.py"
DEFAULT_AUDIO = SHARED / "audio" / "long_mix_44k1.wav"
SIDES = ("official", "streamtag")  # the order within every pair


@dataclass(frozen=True)
class Run:
    """One whole process: wall seconds, peak resident memory (MB), what it printed last on stdout, its CPU seconds
    (user + system), and the CPU seconds the host took from this machine while it ran (steal; None: unknown)."""

    wall_s: float
    peak_rss_mb: float
    stdout_tail: str = ""
    cpu_s: float = 0.0
    steal_s: float | None = None


def host_steal_s() -> float | None:
    """The CPU seconds the hypervisor has taken from this machine since boot (/proc/stat's steal; None: unknown).

    A virtual machine's load average cannot see another guest on the same host; steal time can: it grows while
    a vCPU is runnable but the host runs something else, which slows the official side's torch threads most.
    """
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK") if fields[0] == "cpu" and len(fields) > 8 else None
    except (OSError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class Setting:
    """A window / hop in seconds."""

    window_s: float
    hop_s: float

    def __post_init__(self) -> None:
        if not (self.window_s > 0 and 0 < self.hop_s):
            raise ValueError(f"a setting needs a positive window and hop, got {self.window_s} / {self.hop_s}")

    @property
    def label(self) -> str:
        return f"{self.window_s:g} s / {self.hop_s:g} s"

    @classmethod
    def parse(cls, text: str) -> "Setting":
        window, _, hop = text.partition(":")
        return cls(float(window), float(hop))


GNU_TIME = "/usr/bin/time"  # reports its child's own peak RSS (Debian package `time`)


def timed(cmd: list[str], env: dict | None = None) -> Run:
    """Run `cmd` to its end: its wall time and its own peak RSS; raises RuntimeError with its last stderr line.

    The peak RSS comes from GNU time, which forks the command: a child's ru_maxrss on Linux also holds the peak
    of the process that spawned it (exec keeps the old memory's high-water mark), so taken from this Python's
    own wait4 it would never read below this script's size. Without GNU time it is that upper bound.
    """
    with tempfile.TemporaryDirectory() as d:
        rss_file = Path(d) / "rss"
        gnu_time = os.access(GNU_TIME, os.X_OK)
        full = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *cmd] if gnu_time else cmd
        with open(Path(d) / "out", "w+b") as out, open(Path(d) / "err", "w+b") as err:
            steal0 = host_steal_s()
            t0 = time.perf_counter()
            proc = subprocess.Popen(full, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
            _, status, usage = os.wait4(proc.pid, 0)  # its usage includes the command's, which GNU time waited for
            wall = time.perf_counter() - t0
            steal1 = host_steal_s()
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        if proc.returncode != 0:
            lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("Command exited")]
            raise RuntimeError(f"{' '.join(cmd[:3])} ... failed ({proc.returncode}): {lines[-1] if lines else ''}")
        peak_kb = int(rss_file.read_text().split()[-1]) if gnu_time else usage.ru_maxrss
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    steal = None if steal0 is None or steal1 is None else round(steal1 - steal0, 2)
    return Run(round(wall, 4), round(peak_kb / 1024, 1), lines[-1] if lines else "",
               round(usage.ru_utime + usage.ru_stime, 3), steal)


def run_pairs(commands: dict[str, list[str]], pairs: int, warm: bool = True,
              runner: Callable[[list[str]], Run] = timed) -> dict[str, list[Run]]:
    """Each side once untimed (when `warm`), then `pairs` pairs in SIDES order: the runs of each side, in order."""
    if pairs < 1:
        raise ValueError(f"pairs must be at least 1, got {pairs}")
    if warm:
        for side in SIDES:
            runner(commands[side])
    runs: dict[str, list[Run]] = {side: [] for side in SIDES}
    for _ in range(pairs):
        for side in SIDES:
            runs[side].append(runner(commands[side]))
    return runs


def max_score_diff(official_npy: str | os.PathLike, streamtag_npz: str | os.PathLike) -> tuple[float | None, dict]:
    """The largest absolute score difference between the two outputs (None if their shapes differ), and shapes."""
    theirs = np.load(official_npy)
    with np.load(streamtag_npz) as z:
        ours = z["scores"]
    shapes = {"official": list(theirs.shape), "streamtag": list(ours.shape)}
    if theirs.shape != ours.shape:
        return None, shapes
    return float(np.abs(theirs.astype(np.float64) - ours.astype(np.float64)).max()), shapes


def summarise(setting: Setting, runs: dict[str, list[Run]], diff: float | None, shapes: dict,
              load_before: tuple[float, ...], load_after: tuple[float, ...]) -> dict:
    """One setting's report: every pair, each side's median and range, the ratio of medians and per pair."""
    pairs = [{"official_s": o.wall_s, "streamtag_s": s.wall_s, "ratio": round(o.wall_s / s.wall_s, 3),
              "official_peak_rss_mb": o.peak_rss_mb, "streamtag_peak_rss_mb": s.peak_rss_mb,
              "official_cpu_s": o.cpu_s, "streamtag_cpu_s": s.cpu_s,
              "official_steal_s": o.steal_s, "streamtag_steal_s": s.steal_s,
              "official_printed": o.stdout_tail}  # run_eatagger.py: windows and its tag_audio_window seconds
             for o, s in zip(runs["official"], runs["streamtag"])]
    steals = [r.steal_s for rs in runs.values() for r in rs]
    sides = {side: {"median_s": round(statistics.median(r.wall_s for r in rs), 4),
                    "min_s": min(r.wall_s for r in rs), "max_s": max(r.wall_s for r in rs),
                    "peak_rss_mb": max(r.peak_rss_mb for r in rs)} for side, rs in runs.items()}
    ratios = [p["ratio"] for p in pairs]
    return {"window_s": setting.window_s, "hop_s": setting.hop_s, "windows": shapes["streamtag"][0],
            "pairs": pairs, **sides, "ratio_of_medians": round(sides["official"]["median_s"]
                                                                / sides["streamtag"]["median_s"], 3),
            "ratio_min": min(ratios), "ratio_max": max(ratios), "max_abs_score_diff": diff, "shapes": shapes,
            "steal_s_total": None if any(x is None for x in steals) else round(sum(x or 0.0 for x in steals), 2),
            "load_before": list(load_before), "load_after": list(load_after)}


def _seconds(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.2f} s"


def markdown(report: dict) -> str:
    """The report as markdown: a summary row per setting, then every pair."""
    lines = ["| setting | windows | official EATagger | streamtag `tag` | ratio (range) | peak RSS official / "
             "streamtag | max score diff | load avg before / after | host steal |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in report["settings"]:
        diff = "shapes differ" if r["max_abs_score_diff"] is None else f"{r['max_abs_score_diff']:.1e}"
        lines.append(
            f"| {r['window_s']:g} s / {r['hop_s']:g} s | {r['windows']} | {r['official']['median_s']:.2f} s "
            f"({r['official']['min_s']:.2f}-{r['official']['max_s']:.2f}) | {r['streamtag']['median_s']:.2f} s "
            f"({r['streamtag']['min_s']:.2f}-{r['streamtag']['max_s']:.2f}) | {r['ratio_of_medians']:.2f}x "
            f"({r['ratio_min']:.2f}-{r['ratio_max']:.2f}) | {r['official']['peak_rss_mb']:.0f} / "
            f"{r['streamtag']['peak_rss_mb']:.0f} MB | {diff} | {r['load_before'][0]:.2f} / {r['load_after'][0]:.2f} | "
            f"{_seconds(r.get('steal_s_total'))} |")
    lines += ["", "| setting | pair | official | streamtag | ratio | CPU official / streamtag | host steal official / "
              "streamtag |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in report["settings"]:
        for i, p in enumerate(r["pairs"], 1):
            lines.append(f"| {r['window_s']:g} s / {r['hop_s']:g} s | {i} | {p['official_s']:.2f} s | "
                         f"{p['streamtag_s']:.2f} s | {p['ratio']:.2f}x | {p.get('official_cpu_s', 0):.2f} / "
                         f"{p.get('streamtag_cpu_s', 0):.2f} s | {_seconds(p.get('official_steal_s'))} / "
                         f"{_seconds(p.get('streamtag_steal_s'))} |")
    lines += ["", f"Median of each side's {report['pairs']} whole-process runs, the official one first in every "
              f"pair; {report['audio_s']:g} s of 44.1 kHz stereo audio; {report['machine']}. Host steal: CPU seconds "
              "the hypervisor gave to others while the runs went (/proc/stat; 0 on a quiet host).", "",
              f"    {report['command']}"]
    return "\n".join(lines) + "\n"


def repeat_to(source: str | os.PathLike, seconds: float, dest: str | os.PathLike) -> Path:
    """`source` repeated (and cut) to `seconds`, written to `dest` as 16-bit PCM at its own rate and channels."""
    import soundfile as sf
    audio, rate = sf.read(str(source), dtype="int16", always_2d=True)
    n = int(round(seconds * rate))
    if len(audio) == 0 or n < 1:
        raise ValueError(f"cannot make {seconds:g} s from {source}")
    sf.write(str(dest), np.tile(audio, (-(-n // len(audio)), 1))[:n], rate, subtype="PCM_16")
    return Path(dest)


def commands(args: argparse.Namespace, audio: Path, setting: Setting, folder: Path) -> dict[str, list[str]]:
    """The two sides' command lines for one setting (outputs in `folder`)."""
    window, hop = f"{setting.window_s:g}", f"{setting.hop_s:g}"
    return {
        "official": [args.official_python, str(args.official_runner), str(audio), args.model, str(args.weights),
                     window, hop, str(folder / "official.npy")],
        "streamtag": [*args.streamtag, "tag", str(audio), "--model", args.model, "--weights", str(args.weights),
                      "--window", window, "--hop", hop, "--format", "npz", "-o", str(folder / "streamtag.npz"),
                      "--quiet"],
    }


def machine() -> str:
    """The CPU model and core count, in words."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {len(os.sched_getaffinity(0))} cores"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--official-python", required=True, help="the Python of the official code's venv")
    p.add_argument("--official-runner", type=Path, default=OFFICIAL_RUNNER, help="run_eatagger.py (default: %(default)s)")
    p.add_argument("--weights", type=Path, required=True, help="the checkpoint both sides load")
    p.add_argument("--model", default="mn10_as")
    p.add_argument("--audio", type=Path, default=DEFAULT_AUDIO, help="repeated to --seconds (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=600.0)
    p.add_argument("--settings", type=lambda s: [Setting.parse(x) for x in s.split(",")],
                   default=[Setting(10.0, 2.5), Setting(1.0, 0.5)], help="WINDOW:HOP,... in seconds")
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--streamtag", nargs="+", default=[sys.executable, "-m", "streamtag"],
                   help="the streamtag command (default: this Python's -m streamtag)")
    p.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    for path in (args.official_runner, args.weights, args.audio):
        if not Path(path).is_file():
            raise SystemExit(f"not found: {path}")
    report: dict = {"model": args.model, "pairs": args.pairs, "audio_s": args.seconds, "machine": machine(),
                    "command": " ".join(["python", "benchmarks/compare_official.py", *(argv or sys.argv[1:])]),
                    "load_start": list(os.getloadavg()), "settings": []}
    with tempfile.TemporaryDirectory(prefix="compare-official-") as d:
        folder = Path(d)
        audio = repeat_to(args.audio, args.seconds, folder / "audio.wav")
        for setting in args.settings:
            cmds = commands(args, audio, setting, folder)
            before = os.getloadavg()
            runs = run_pairs(cmds, args.pairs)
            after = os.getloadavg()
            diff, shapes = max_score_diff(folder / "official.npy", folder / "streamtag.npz")
            report["settings"].append(summarise(setting, runs, diff, shapes, before, after))
            print(f"{setting.label}: " + ", ".join(f"{p['official_s']:.2f} s / {p['streamtag_s']:.2f} s"
                                                  for p in report["settings"][-1]["pairs"]), file=sys.stderr)
    report["load_end"] = list(os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(report, indent=1))
    Path(f"{args.out}.md").write_text(markdown(report))
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
