"""The prepared GPU check runs on CPU (its dry run) and reports parity within the goldens' tolerances."""
import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT


@pytest.mark.slow
def test_gpu_check_dry_run_on_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--quick",
                          "--out", str(out), "--sections", "effat_parity,batch_sweep"], capture_output=True,
                         text=True, timeout=600, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    report = json.loads(out.read_text())
    parity = report["effat_parity"]
    assert "error" not in parity and parity, parity
    for row in parity.values():
        assert row["fp32_max_score_diff"] <= 1e-4 and row["fp32_max_emb_rel_diff"] <= 1e-3
        assert 0.0 <= row["bf16"]["top1"] <= 1.0
    sweep = report["batch_sweep"]
    assert "error" not in sweep and all(v["windows_per_s"] > 0 for v in sweep.values())
