"""One-shot GPU check (issue #23): device tests, CUDA parity, batch sweep, a 1-hour file end to end, Ray GPU actors.

Run on the GPU machine through `benchmarks/gpu_check.sh`; dry-run here with
`python benchmarks/gpu_check.py --device cpu --quick --out /tmp/gpu_check.json`. Every section is
timed and guarded: a failing section records its error and the others still run. Writes one JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from streamtag import Tagger, create_model
from streamtag.audio import FileSource
from streamtag.models import RunTarget
from streamtag.pipeline import ModelRunner

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STREAMTAG_SHARED", ROOT.parent / "shared"))
EFFAT = SHARED / "fixtures" / "efficientat"
DATA = ROOT / "tests" / "data"
MN10_FIXTURE = EFFAT / "mn10_as_random.pt"
TRANSFORMERS = {  # registry name -> fixture checkpoint (reduced random weights, official layout)
    "beats_iter3": SHARED / "fixtures" / "beats" / "beats_finetuned_small_random.pt",
    "ssast_tiny_patch_400": SHARED / "fixtures" / "ssast" / "ssast_tiny_patch_depth2_finetuned527_random.pth",
    "atstframe_small": SHARED / "fixtures" / "atstframe" / "atstframe_small_depth2_random.ckpt",
    "eat_base_epoch30_as2m": SHARED / "fixtures" / "eat" / "eat_finetuned_depth2_random.pt",
}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def top_agreement(ref: np.ndarray, other: np.ndarray, k: int) -> float:
    """Share of windows whose top-k label sets are equal."""
    a, b = np.argsort(-ref, axis=1)[:, :k], np.argsort(-other, axis=1)[:, :k]
    return float(np.mean([set(x) == set(y) for x, y in zip(a, b)]))


def rel_err(e: np.ndarray, ref: np.ndarray) -> float:
    """Per-vector max|e - ref| / max|ref|, worst over rows (the fixtures' embedding metric)."""
    return float((np.abs(e - ref).max(axis=1) / np.abs(ref).max(axis=1)).max())


def precision_agreement(model, path: Path, device: str, fp32_scores: np.ndarray) -> dict:
    """fp16 (CUDA only) and bf16 autocast against fp32 scores: top-1/top-5 agreement, max score difference."""
    out = {}
    for precision in ("fp16", "bf16") if device == "cuda" else ("bf16",):
        low, _ = tag(model, path, device, precision)
        out[precision] = {"top1": top_agreement(fp32_scores, low, 1), "top5": top_agreement(fp32_scores, low, 5),
                          "max_score_diff": float(np.abs(fp32_scores - low).max())}
    return out


def mn10_model():
    """mn10_as with the fixture's random weights (../shared), else random-initialised: the speed is the same."""
    if MN10_FIXTURE.is_file():
        return create_model("mn10_as", weights=MN10_FIXTURE)
    return create_model("mn10_as", pretrained=False)


def tag(model, path: Path, device: str, precision: str = "fp32", window: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    results = list(Tagger(model, window=window, hop=window / 2, device=device, precision=precision).tag_file(path))
    scores = np.stack([r.scores for r in results]) if results[0].scores is not None else None
    return scores, np.stack([r.embedding for r in results])


def effat_parity(device: str, quick: bool) -> dict:
    """fp32 against the official goldens; fp16/bf16 autocast against fp32 (top-1/top-5, max score difference)."""
    cases = [("mn04_as", None, "mn04_as")]
    if EFFAT.is_dir():
        cases += [("mn10_as", MN10_FIXTURE, "mn10_as_random"),
                  ("dymn04_as", EFFAT / "dymn04_as_random.pt", "dymn04_as_random")]
    out = {}
    for name, weights, golden_name in cases:
        model = create_model(name, weights=weights)
        for inp in ("input_32k_mono", "input_44k1_stereo"):
            golden_path = EFFAT / f"{golden_name}__{inp}.npz"
            if golden_path.is_file():
                path, g = EFFAT / f"{inp}.wav", dict(np.load(golden_path))
                ref_scores, ref_emb = g["w1_scores"], g["w1_embeddings"]
            else:  # no ../shared: the bundled golden of the first seconds
                key = "mono32k" if "32k" in inp else "stereo44k"
                path = DATA / ("whale_32k_mono_3s.flac" if key == "mono32k" else "whale_44k1_stereo_2.6s.flac")
                g = dict(np.load(DATA / "mn04_as_golden.npz"))
                ref_scores, ref_emb = g[f"{key}_w1_scores"], g[f"{key}_w1_embeddings"]
            scores, emb = tag(model, path, device)
            n = len(ref_scores)
            out[f"{golden_name}/{inp}"] = {"fp32_max_score_diff": float(np.abs(scores[:n] - ref_scores).max()),
                                           "fp32_max_emb_rel_diff": rel_err(emb[:n], ref_emb),
                                           **precision_agreement(model, path, device, scores)}
        if quick:
            break
    return out


def transformer_parity(device: str, quick: bool) -> dict:
    """CUDA against CPU (the CPU path is golden-tested in tests/models), fp32, and autocast against fp32."""
    out = {}
    wave_path = DATA / "whale_44k1_stereo_2.6s.flac"
    for name, weights in TRANSFORMERS.items():
        if not weights.is_file():
            out[name] = "skipped: no ../shared fixture"
            continue
        model = create_model(name, weights=weights)
        cpu_scores, cpu_emb = tag(model, wave_path, "cpu", window=1.0)
        dev_scores, dev_emb = tag(model, wave_path, device, window=1.0)
        row = {"fp32_max_emb_rel_diff_vs_cpu": rel_err(dev_emb, cpu_emb)}
        if cpu_scores is not None:
            row["fp32_max_score_diff_vs_cpu"] = float(np.abs(dev_scores - cpu_scores).max())
            if device == "cuda":
                row.update(precision_agreement(model, wave_path, device, dev_scores))
        out[name] = row
        if quick:
            break
    return out


def batch_sweep(device: str, quick: bool) -> dict:
    """Model-only windows/s of mn10 (front-end + network, data already on the device) per batch and precision."""
    dev = torch.device(device)
    model = mn10_model()
    out = {}
    precisions = ("fp32", "fp16", "bf16") if dev.type == "cuda" else ("fp32",)
    for window_s, batches in ((10.0, (1, 8, 32, 128, 512, 1024)), (1.0, (16, 128, 1024, 4096, 8192))):
        if quick:
            batches = batches[:2]
        for precision in precisions:
            runner = ModelRunner(model, RunTarget(str(dev), precision=precision))
            for batch in batches:
                x = torch.randn(batch, int(window_s * 32000), device=dev) * 0.05
                if dev.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(dev)
                try:
                    with torch.inference_mode(), runner._autocast():
                        fast = model.optimized_for(x[:1]) if precision == "fp32" or dev.type == "cuda" else model
                        fast(x)  # warm-up (cuDNN autotuning)
                        synchronize(dev)
                        reps = 2 if quick else max(3, min(50, 4096 // batch))
                        t0 = time.perf_counter()
                        for _ in range(reps):
                            fast(x)
                        synchronize(dev)
                        seconds = (time.perf_counter() - t0) / reps
                except torch.cuda.OutOfMemoryError:
                    out[f"{window_s:g}s/{precision}/b{batch}"] = "out of memory"
                    torch.cuda.empty_cache()
                    break
                out[f"{window_s:g}s/{precision}/b{batch}"] = {
                    "windows_per_s": batch / seconds,
                    "gpu_peak_mb": torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None}
                del x
    return out


def write_long_file(path: Path, seconds: int, rate: int = 44100) -> None:
    """Stereo noise with tones, written a minute at a time (PCM16)."""
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", rate, 2, "PCM_16") as f:
        for start in range(0, seconds, 60):
            n = rate * min(60, seconds - start)
            t = np.arange(n) / rate
            tone = 0.2 * np.sin(2 * np.pi * (440 + 10 * (start // 60)) * t)
            f.write(np.stack([tone + rng.standard_normal(n) * 0.02, 0.5 * tone], 1).astype(np.float32))


def stage_profile(path: Path, device: str, window: float, hop: float, batch: int) -> dict:
    """Where the time goes, stage by stage, each measured alone on the same file."""
    dev = torch.device(device)
    prof: dict = {}
    t0 = time.perf_counter()
    with sf.SoundFile(path) as f:
        frames = 0
        for block in f.blocks(blocksize=1 << 16, dtype="float32"):
            frames += len(block)
    prof["decode_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    wave = np.concatenate(list(FileSource(path).blocks(32000)))
    prof["decode_resample_s"] = time.perf_counter() - t0
    model = mn10_model().to(dev).eval()
    w, h = int(window * 32000), int(hop * 32000)
    count = 1 + max(0, (len(wave) - w + h - 1) // h)
    wave = np.pad(wave, (0, (count - 1) * h + w - len(wave)))
    windows = np.lib.stride_tricks.sliding_window_view(wave, w)[::h][:count]
    totals = {"h2d_s": 0.0, "frontend_s": 0.0, "network_s": 0.0, "d2h_s": 0.0}
    with torch.inference_mode():
        for start in range(0, count, batch):
            host = torch.from_numpy(np.ascontiguousarray(windows[start:start + batch]))
            t = time.perf_counter()
            x = host.to(dev, non_blocking=False)
            synchronize(dev)
            totals["h2d_s"] += time.perf_counter() - t
            t = time.perf_counter()
            mel = model.frontend(x)
            synchronize(dev)
            totals["frontend_s"] += time.perf_counter() - t
            t = time.perf_counter()
            logits, emb = model.network(mel)
            synchronize(dev)
            totals["network_s"] += time.perf_counter() - t
            t = time.perf_counter()
            torch.sigmoid(logits).cpu().numpy(), emb.cpu().numpy()
            totals["d2h_s"] += time.perf_counter() - t
    prof.update(totals)
    prof["windows"] = count
    return prof


def long_file(device: str, quick: bool, tmp: Path) -> dict:
    """`streamtag tag` on a synthesised 44.1 kHz stereo file (1 h; 3 min with --quick), whole process, plus stages."""
    seconds = 180 if quick else 3600
    path = tmp / "long.wav"
    t0 = time.perf_counter()
    write_long_file(path, seconds)
    out: dict = {"audio_s": seconds, "write_s": time.perf_counter() - t0}
    weights = ["--model", "mn10_as", "--weights", str(MN10_FIXTURE)] if MN10_FIXTURE.is_file() else []
    for window, hop in ((10.0, 2.5), (1.0, 0.5)):
        cmd = [sys.executable, "-m", "streamtag", "tag", str(path), *weights, "--device", device, "--window",
               str(window), "--hop", str(hop), "--format", "npz", "-o", str(tmp / "long.npz"), "-q"]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        row = {"rc": res.returncode, "wall_s": wall, "x_real_time": seconds / wall, "stderr": res.stderr[-1500:]}
        if res.returncode == 0:
            with np.load(tmp / "long.npz") as z:
                row["windows"] = int(len(z["start_s"]))
            row["windows_per_s"] = row["windows"] / wall
        batch = 256 if window >= 10 else 1024
        row["stages"] = stage_profile(path, device, window, hop, batch if not quick else 32)
        out[f"{window:g}s/{hop:g}s"] = row
    return out


def ray_engine(device: str, quick: bool, tmp: Path) -> dict:
    """The Ray engine on this machine (GPU actors when the device is CUDA) over a few files."""
    folder = tmp / "archive"
    folder.mkdir()
    for i in range(2 if quick else 4):
        write_long_file(folder / f"rec{i}.wav", 60 if quick else 300)
    cmd = [sys.executable, "-m", "streamtag", "tag", str(folder), "--engine", "ray", "--device", device,
           "--window", "1", "--hop", "0.5", "--format", "npz", "--output-dir", str(tmp / "ray_out"), "-q"]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    return {"rc": res.returncode, "wall_s": time.perf_counter() - t0, "stderr": res.stderr[-2000:],
            "outputs": sorted(p.name for p in (tmp / "ray_out").glob("*.npz")) if (tmp / "ray_out").is_dir() else []}


def device_tests() -> dict:
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "device"],
                         cwd=ROOT, capture_output=True, text=True)
    return {"rc": res.returncode, "tail": res.stdout[-3000:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="small sizes: a CPU dry run of every section")
    parser.add_argument("--out", default="gpu_check.json")
    parser.add_argument("--sections", default="device_tests,effat_parity,transformer_parity,batch_sweep,long_file,ray")
    args = parser.parse_args()
    report: dict = {"python": sys.version.split()[0], "torch": torch.__version__, "platform": platform.platform(),
                    "cpus": os.cpu_count(), "device": args.device, "quick": args.quick}
    if torch.cuda.is_available():
        report["gpu"] = torch.cuda.get_device_name(0)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # parity: no TF32
    with tempfile.TemporaryDirectory() as tmp:
        sections = {"device_tests": device_tests,
                    "effat_parity": lambda: effat_parity(args.device, args.quick),
                    "transformer_parity": lambda: transformer_parity(args.device, args.quick),
                    "batch_sweep": lambda: batch_sweep(args.device, args.quick),
                    "long_file": lambda: long_file(args.device, args.quick, Path(tmp)),
                    "ray": lambda: ray_engine(args.device, args.quick, Path(tmp))}
        for name in args.sections.split(","):
            t0 = time.perf_counter()
            try:
                report[name] = sections[name]()
            except Exception as e:  # record and go on: one broken section must not cost the rest of the lease
                report[name] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-3000:]}
            report.setdefault("section_seconds", {})[name] = time.perf_counter() - t0
            Path(args.out).write_text(json.dumps(report, indent=1))
            print(f"{name}: {report['section_seconds'][name]:.1f} s", flush=True)


if __name__ == "__main__":
    main()
