"""`streamtag bench`: the real pipeline against a naive EATagger-style loop, measured in one run.

Each side runs in its own subprocess (so each has its own peak RSS) on the same audio file:

* pipeline: `Tagger.run(FileSource)` end to end: decode -> resample -> ring -> windows ->
  batched model (shared STFT frames, frozen network) -> dispatcher -> a subscriber;
* baseline: what EfficientAT's EATagger does: load the whole file (librosa-equivalent:
  soundfile, channel mean, soxr HQ), then per window at batch 1 under torch.no_grad the
  front-end (mel bank rebuilt on every call, as `AugmentMelSTFT.forward` does) and the model;
* live: a simulated real-time source pushes 10 ms blocks at wall-clock pace into a live
  Tagger; latency = time from the feed of a window's last sample to its callback.
"""
from __future__ import annotations

import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
import torch.nn.functional as F

from .audio.sources import ArraySource, FileSource
from .errors import ConfigError, PipelineError, StreamtagError
from .models import BUNDLED_MODEL, get_spec, load_labels
from .models.loader import ModelChoice, RunTarget, build_network, load
from .models.frontends import kaldi_mel_banks
from .models.mobilenet import EfficientATConfig
from .pipeline import Tagger
from .threads import DEFAULT_WAIT_POLICY, user_wait_policy
from .windows import WindowSpec

MAX_SYNTH_S = 24 * 3600.0  # synthetic audio is written to a temporary file: at most a day of it


def synth_audio(path: Path, seconds: float, rate: int = 44100, channels: int = 2, seed: int = 0) -> Path:
    """Write a deterministic test recording (tones, clicks and noise), block by block."""
    rng = np.random.default_rng(seed)
    block = rate * 10
    with sf.SoundFile(path, "w", rate, channels, "PCM_16") as f:
        done = 0
        total = int(seconds * rate)
        while done < total:
            n = min(block, total - done)
            t = (np.arange(n) + done) / rate
            x = 0.1 * np.sin(2 * np.pi * (220 + 110 * np.sin(t / 7)) * t) + 0.03 * rng.standard_normal(n)
            x[(np.arange(n) + done) % (rate // 3) < 40] += 0.5
            f.write(np.repeat(x[:, None], channels, axis=1).astype(np.float32))
            done += n
    return path


def _peak_rss_mb() -> float:
    """This process's own peak resident memory: VmHWM, where Linux has it (after fork and exec, ru_maxrss keeps
    the parent's high-water mark too)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load_model(name: str, weights: str | None):
    """What the pipeline side runs (the model choice, as `tag` loads it; a random-initialised torch model when no
    weights can be had), the torch model the naive baseline runs, and where the weights came from.

    Random initialisation costs the same, but its untrained activations are huge, so the score
    comparison between the sides is only meaningful with real (or fixture) weights.
    """
    labels = load_labels()
    choice = ModelChoice.parse(name, weights)
    try:
        model = load(choice, labels, RunTarget(device="cpu", runtime="torch", optimize=False)).model
        return choice, model, model.weights.origin if model.weights is not None else "per member"
    except StreamtagError:
        if weights is not None:
            raise
        model = build_network(get_spec(name), None, labels)
        return model, model, "random-init"


def naive_mel(wave: torch.Tensor, n_mels: int = 128, sr: int = 32000, n_fft: int = 1024, win: int = 800,
              hop: int = 320) -> torch.Tensor:
    """EATagger's eval front-end as published: the Kaldi mel bank is rebuilt on every call."""
    x = F.conv1d(wave.unsqueeze(1), torch.tensor([[[-0.97, 1.0]]])).squeeze(1)
    spec = torch.stft(x, n_fft, hop_length=hop, win_length=win, center=True, normalized=False,
                      window=torch.hann_window(win, periodic=False), return_complex=True)
    power = spec.real.square() + spec.imag.square()
    bank = kaldi_mel_banks(n_mels, n_fft, float(sr), 0.0, float(sr // 2 - 1000))
    mel = torch.matmul(F.pad(bank, (0, 1)), power)
    return (((mel + 1e-5).log() + 4.5) / 5.0).unsqueeze(1)


def run_baseline(path: str, model, window: float, hop: float) -> tuple[float, np.ndarray]:
    """Whole file in memory, one window at a time; returns (seconds, scores [K, 527])."""
    t0 = time.perf_counter()
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1, dtype=np.float32)
    wave = soxr.resample(mono, rate, 32000, quality="HQ") if rate != 32000 else mono
    spec = WindowSpec.from_seconds(window, hop, 32000)
    n = spec.total(len(wave))
    wave = np.pad(wave, (0, max(0, spec.end(n - 1) - len(wave))))
    f = model.spec.config  # EfficientAT front-end settings (benchmark() checks the family)
    scores = []
    with torch.no_grad():
        for k in range(n):
            x = torch.from_numpy(wave[spec.start(k):spec.end(k)])[None]
            logits, _ = model.network(naive_mel(x, f.n_mels, f.sample_rate, f.n_fft, f.win_length, f.hop_length))
            scores.append(torch.sigmoid(logits)[0].numpy())
    return time.perf_counter() - t0, np.stack(scores)


def run_pipeline(path: str, tagger: Tagger) -> tuple[float, np.ndarray]:
    """Tag a file end to end with a collecting subscriber; returns (seconds, scores [K, 527])."""
    scores: list[np.ndarray] = []
    collect = tagger.subscribe(lambda r: scores.append(r.scores))
    try:
        t0 = time.perf_counter()
        tagger.run(FileSource(path))
        return time.perf_counter() - t0, np.stack(scores)
    finally:
        tagger.unsubscribe(collect)


def run_live(tagger: Tagger, seconds: float, block_s: float = 0.01) -> dict:
    """Feed a 32 kHz signal in real time; latency = feed of a window's last sample -> callback."""
    rate = tagger.sample_rate
    signal = np.random.default_rng(1).standard_normal(int(seconds * rate)).astype(np.float32) * 0.05
    fed_at: list[tuple[int, float]] = []
    latencies: list[float] = []

    def on_result(r) -> None:
        now = time.perf_counter()
        end = min(r.end_sample, len(signal))
        t = next((t for n, t in fed_at if n >= end), None)
        if t is not None and r.end_sample <= len(signal):
            latencies.append(now - t)
    tagger.subscribe(on_result)
    tagger.start(ArraySource(rate, live=True))
    block = int(block_s * rate)
    t0 = time.perf_counter()
    for i in range(0, len(signal), block):
        target = t0 + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        tagger.feed(signal[i:i + block], rate)
        fed_at.append((i + len(signal[i:i + block]), time.perf_counter()))
    tagger.end()
    tagger.join()
    lat = np.asarray(latencies) * 1e3
    stats = tagger.stats
    return {"windows": len(lat), "latency_ms_p50": float(np.percentile(lat, 50)),
            "latency_ms_p95": float(np.percentile(lat, 95)), "latency_ms_max": float(lat.max()),
            "lost_samples": stats.lost_samples}


def worker(mode: str, path: str, warmup: str, model_name: str, weights: str | None, window: float, hop: float,
           repeats: int, device: str, batch_size: int | None, threads: int | None, out: str,
           live_seconds: float, runtime: str = "auto") -> None:
    """One side of the benchmark, in its own process; writes JSON and the scores next to `out`."""
    if threads:
        torch.set_num_threads(threads)
    choice, model, kind = _load_model(model_name, weights)
    times, scores = [], None
    result: dict = {"mode": mode, "weights": kind}
    if mode == "baseline":
        run_baseline(warmup, model, window, hop)
        for _ in range(repeats):
            t, scores = run_baseline(path, model, window, hop)
            times.append(t)
    elif mode == "pipeline":
        tagger = Tagger(choice, window, hop, device=device, batch_size=batch_size, runtime=runtime)
        run_pipeline(warmup, tagger)  # the first batch freezes the network: not timed
        for _ in range(repeats):
            t, scores = run_pipeline(path, tagger)
            times.append(t)
        result["batch_size"] = tagger.batch_size
        result["device"] = str(tagger.device)
        if str(tagger.device).startswith("cuda"):
            result["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:  # live
        tagger = Tagger(choice, window, hop, device=device, batch_size=batch_size, runtime=runtime)
        run_pipeline(warmup, tagger)
        result.update(run_live(tagger, live_seconds))
    if times:
        result["seconds_all"] = times
        result["seconds"] = statistics.median(times)
        result["windows"] = int(len(scores))
        np.save(out + ".npy", scores)
    result["peak_rss_mb"] = _peak_rss_mb()
    Path(out).write_text(json.dumps(result))


def _spawn(mode: str, args: dict, tmp: Path) -> dict:
    out = str(tmp / f"{mode}.json")
    cmd = [sys.executable, "-m", "streamtag.bench", mode, json.dumps({**args, "out": out})]
    env = dict(os.environ)
    if mode == "baseline":  # the baseline runs as a user would run EATagger: OpenMP's own default
        env.pop("OMP_WAIT_POLICY", None)
        if user_wait_policy() is not None:
            env["OMP_WAIT_POLICY"] = user_wait_policy()
    else:  # the pipeline runs as the CLI does (streamtag.threads)
        env.setdefault("OMP_WAIT_POLICY", DEFAULT_WAIT_POLICY)
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["no output"])[-1]
        raise PipelineError(f"benchmark {mode} failed: {last}")
    r = json.loads(Path(out).read_text())
    if Path(out + ".npy").exists():
        r["_scores"] = np.load(out + ".npy")
    return r


def benchmark(model: ModelChoice = ModelChoice(), duration: float = 600.0, window: float | None = None,
              hop: float | None = None, repeats: int = 3, target: RunTarget = RunTarget(),
              batch_size: int | None = None, file: str | None = None, threads: int | None = None,
              live_seconds: float = 20.0, baseline: bool = True, live: bool = True) -> dict:
    """Run both sides (the pipeline and an in-process naive EATagger-style loop) and the live simulation, and
    return the comparison as a dict (the comparison with the official code is `benchmarks/compare_official.py`).
    No model named: the default model with weights given, else the bundled one (real weights offline).
    """
    if model.is_ensemble or model.head is not None:
        raise ConfigError("the benchmark runs one registered model")
    weights = model.weights[0] if model.weights else None
    window, hop = model.windows(window, hop)
    device, runtime = target.device, target.runtime
    name = model.describe() or BUNDLED_MODEL
    WindowSpec.from_seconds(window, hop, 32000)  # bad windows fail here, before any subprocess starts
    if threads is not None and threads < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}")
    if file is None and not (math.isfinite(duration) and 0 < duration <= MAX_SYNTH_S):
        raise ConfigError(f"the benchmark's audio must last more than 0 and at most {MAX_SYNTH_S:g} s, "
                          f"got {duration:g} s")
    if live and not (math.isfinite(live_seconds) and window + hop <= live_seconds <= MAX_SYNTH_S):
        raise ConfigError(f"the live simulation must last at least one window and hop ({window + hop:g} s), "
                          f"got {live_seconds:g} s (or pass --no-live)")
    if not isinstance(get_spec(name).config, EfficientATConfig):
        raise ConfigError(f"the benchmark's EATagger-style baseline runs EfficientAT models (mn*, dymn*), not {name}")
    with tempfile.TemporaryDirectory(prefix="streamtag-bench-") as d:
        tmp = Path(d)
        path = file or str(synth_audio(tmp / "bench.wav", duration))
        # long enough for two full batches, so one-time costs (freezing, kernel set-up) are not timed
        warmup = str(synth_audio(tmp / "warmup.wav", window + 64 * hop))
        audio_s = sf.info(path).duration
        args = dict(path=path, warmup=warmup, model_name=name, weights=weights, window=window, hop=hop, repeats=repeats,
                    device=device, batch_size=batch_size, threads=threads, live_seconds=live_seconds, runtime=runtime)
        report: dict = {"model": name, "window_s": window, "hop_s": hop, "audio_s": audio_s,
                        "repeats": repeats, "runtime": runtime, "baseline_kind": "naive EATagger-style loop, in process", "torch_threads": threads or torch.get_num_threads()}
        # each side runs in two processes, in the order A B B A so that drift in a shared
        # machine's speed falls on both alike; each process times `repeats` runs after a warm-up
        runs: dict[str, list[dict]] = {"pipeline": [], "baseline": []}
        for order in (["pipeline", "baseline"], ["baseline", "pipeline"]):
            for mode in order:
                if mode == "pipeline" or baseline:
                    runs[mode].append(_spawn(mode, args, tmp))
        report["pipeline"] = _summary(runs["pipeline"], audio_s)
        report["weights"] = runs["pipeline"][0]["weights"]
        if baseline:
            report["baseline"] = _summary(runs["baseline"], audio_s)
            report["speedup"] = report["pipeline"]["windows_per_s"] / report["baseline"]["windows_per_s"]
            a, b = runs["pipeline"][-1]["_scores"], runs["baseline"][-1]["_scores"]
            report["max_abs_score_diff"] = float(np.abs(a - b).max()) if a.shape == b.shape else None
        if live:
            lv = _spawn("live", args, tmp)
            report["live"] = {k: v for k, v in lv.items() if k not in ("mode", "weights")}
        return report


def _summary(runs: list[dict], audio_s: float) -> dict:
    """Median time over all timed runs of one side; peak RSS is the largest any process reached."""
    seconds = statistics.median(t for r in runs for t in r["seconds_all"])
    r0 = runs[0]
    out = {"seconds": seconds, "windows": r0["windows"], "windows_per_s": r0["windows"] / seconds,
           "realtime_factor": audio_s / seconds, "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}
    for key in ("gpu_peak_mb", "batch_size", "device"):
        if key in r0:
            out[key] = r0[key]
    return out


if __name__ == "__main__":
    mode, payload = sys.argv[1], json.loads(sys.argv[2])
    worker(mode, **payload)
