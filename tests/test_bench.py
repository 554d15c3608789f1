"""`streamtag bench` runs both sides and the live simulation and reports comparable numbers (no speed asserted)."""
import json

from click.testing import CliRunner

from streamtag.cli import main
from tests.helpers import MN04_WEIGHTS


def test_bench_reports_both_sides_with_equal_scores():
    res = CliRunner().invoke(main, ["bench", "--model", "mn04_as", "--weights", str(MN04_WEIGHTS), "--duration", "8", "--window", "1",
                                    "--hop", "0.5", "--repeats", "1", "--live-seconds", "3", "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    assert r["pipeline"]["windows"] == r["baseline"]["windows"] == 15
    assert r["max_abs_score_diff"] <= 1e-4
    for side in ("pipeline", "baseline"):
        assert r[side]["windows_per_s"] > 0 and r[side]["peak_rss_mb"] > 0
    assert r["speedup"] == r["pipeline"]["windows_per_s"] / r["baseline"]["windows_per_s"]
    live = r["live"]
    assert live["windows"] >= 3 and 0 <= live["latency_ms_p50"] <= live["latency_ms_p95"] <= live["latency_ms_max"]
    assert live["lost_samples"] == 0


FAKE_EATAGGER = '''
"""A stand-in for EfficientAT's windowed_inference.py: its EATagger interface and loop, our architecture."""
import numpy as np, soundfile as sf, soxr, torch
from models.mn.model import get_model
from streamtag.models.frontends import EfficientATMel

def get_mobilenet(width_mult, pretrained_name):
    raise AssertionError("the runner must replace the download")

class EATagger:
    def __init__(self, model_name=None, device="cpu"):
        self.model = get_mobilenet(width_mult={"mn04_as": 0.4}[model_name], pretrained_name=model_name).eval()
        self.mel = EfficientATMel()

    def tag_audio_window(self, audio_path, window_size=20.0, hop_length=10.0):
        x, sr = sf.read(audio_path, dtype="float32", always_2d=True)
        x = soxr.resample(x.mean(axis=1, dtype=np.float32), sr, 32000, quality="HQ")
        w, h = int(window_size * 32000), int(hop_length * 32000)
        tags = []
        with torch.no_grad():
            for start in range(0, max(1, len(x) - w + h), h):
                chunk = np.pad(x[start:start + w], (0, max(0, w - len(x[start:start + w]))))
                self.model(self.mel(torch.from_numpy(chunk)[None]))
                tags.append(start)
        return tags
'''
FAKE_MODEL = '''
from streamtag.models.mobilenet import MobileNetAT

def get_model(width_mult=1.0, pretrained_name=None):
    return MobileNetAT(width_mult)
'''


def test_bench_against_a_reference_checkout_runs_whole_processes(tmp_path, monkeypatch):
    code = tmp_path / "EfficientAT"
    (code / "models" / "mn").mkdir(parents=True)
    (code / "windowed_inference.py").write_text(FAKE_EATAGGER)
    for pkg in (code / "models", code / "models" / "mn"):
        (pkg / "__init__.py").write_text("")
    (code / "models" / "mn" / "model.py").write_text(FAKE_MODEL)
    monkeypatch.chdir(tmp_path)  # a checkout given relative to the working folder
    res = CliRunner().invoke(main, ["bench", "--model", "mn04_as", "--weights", str(MN04_WEIGHTS), "--duration", "6",
                                    "--window", "1", "--hop", "0.5", "--repeats", "1",
                                    "--reference-code", "EfficientAT", "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    assert r["baseline_kind"] == "official EATagger, whole process" and r["windows"] == 11
    assert r["max_abs_score_diff"] <= 1e-4
    assert r["speedup"] == r["official"]["seconds"] / r["streamtag"]["seconds"] > 0
    res = CliRunner().invoke(main, ["bench", "--model", "mn04_as", "--reference-code", str(tmp_path)])
    assert res.exit_code == 1 and "not an EfficientAT checkout (no windowed_inference.py)" in res.output
