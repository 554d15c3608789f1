"""Is the dashboard smooth with 4 sources at 1 s / 0.5 s? `streamtag serve` with 4 realtime file sources (looping), the
page in Debian's headless Chromium: frame intervals (requestAnimationFrame) and long tasks over SECONDS, and the
page's script/layout/paint time (Chrome DevTools Performance metrics) per second.

Baseline in the same run: the same page and server with the page subscribed to no source (`?sources=none`: the
cards are drawn, nothing streams), then the live page with every source.

usage: python benchmarks/dashboard_frames.py [--seconds 10] [--sources 4] [--warmup 3]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demos" / "speech_dog_12s.flac"
ASSETS = ROOT / "streamtag" / "assets"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]

PROBE = """async (seconds) => {
  const frames = [], longtasks = [];
  const obs = new PerformanceObserver(list => { for (const e of list.getEntries()) longtasks.push(e.duration); });
  obs.observe({ entryTypes: ["longtask"] });
  const t0 = performance.now();
  await new Promise(done => {
    let last = t0;
    function tick(t) { frames.push(t - last); last = t; if (t - t0 < seconds * 1000) requestAnimationFrame(tick); else done(); }
    requestAnimationFrame(tick);
  });
  obs.disconnect();
  const windows = [...document.querySelectorAll('.heat')].map(c => +(c.dataset.columns || 0));
  return { frames, longtasks, elapsed: performance.now() - t0, windows };
}"""


def stats(run: dict, metrics: dict) -> dict:
    import numpy as np
    f = np.asarray(run["frames"][1:])
    secs = run["elapsed"] / 1e3
    return {"fps": round(len(f) / secs, 1), "frame_ms_p50": round(float(np.percentile(f, 50)), 1),
            "frame_ms_p95": round(float(np.percentile(f, 95)), 1), "frame_ms_p99": round(float(np.percentile(f, 99)), 1),
            "frame_ms_max": round(float(f.max()), 1), "frames_over_50ms": int((f > 50).sum()),
            "long_tasks": len(run["longtasks"]), "long_task_ms_max": round(max(run["longtasks"], default=0), 1),
            "script_ms_per_s": round(metrics["ScriptDuration"] * 1e3 / secs, 1),
            "layout_style_ms_per_s": round((metrics["LayoutDuration"] + metrics["RecalcStyleDuration"]) * 1e3 / secs, 1),
            "task_ms_per_s": round(metrics["TaskDuration"] * 1e3 / secs, 1), "heat_columns": run["windows"]}


def measure(page, cdp, seconds: float) -> dict:
    before = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    run = page.evaluate(PROBE, seconds)
    after = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return stats(run, {k: after[k] - before[k] for k in after if isinstance(after[k], (int, float)) and k in before})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--sources", type=int, default=4)
    ap.add_argument("--warmup", type=float, default=3.0,
                    help="seconds the page runs before measuring (125: full 240-window heat maps)")
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "streamtag", "serve", "--realtime", "--loop", "--bind", f"127.0.0.1:{port}",
           "--model", "mn04_as", "--weights", str(ASSETS / "mn04_as_mAP_432.pt"), "--device", "cpu", "--quiet"]
    for i in range(args.sources):
        cmd += ["--source", f"s{i + 1}={DEMO}"]
    server = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                st = json.load(urllib.request.urlopen(url + "/api/status", timeout=2))
                if all(s["state"] == "running" and s["windows"] > 2 for s in st["sources"]):
                    break
            except OSError:
                pass
            time.sleep(0.5)
        from playwright.sync_api import sync_playwright
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            results = {}
            for name, path in (("baseline (no source streams)", "/?sources=none"), ("live, every source", "/")):
                page = b.new_page(viewport={"width": 1400, "height": 1000})
                cdp = page.context.new_cdp_session(page)
                cdp.send("Performance.enable")
                page.goto(url + path)
                page.wait_for_selector("section.source")
                time.sleep(args.warmup)  # the live page fills its heat maps and spectrograms first
                results[name] = measure(page, cdp, args.seconds)
                page.close()
            b.close()
        st = json.load(urllib.request.urlopen(url + "/api/status", timeout=5))
        print(json.dumps({"sources": args.sources, "seconds": args.seconds, "results": results,
                          "server_p95_latency_ms": {s["name"]: s["latency_ms"]["p95"] for s in st["sources"]}},
                         indent=1))
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)


if __name__ == "__main__":
    main()
