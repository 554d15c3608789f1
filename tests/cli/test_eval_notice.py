"""`streamtag eval` names the predicted labels it leaves out, on stderr, in one line."""
from __future__ import annotations

import json

from click.testing import CliRunner

from streamtag.cli import main


def write(tmp_path):
    (tmp_path / "ref.csv").write_text("onset,offset,label\n0,4,Speech\n6,9,Dog\n")
    rows = [("Speech", 0.1, 4.0), ("Dog", 6.2, 9.1), ("Animal", 6.2, 9.1), ("Bark", 6.0, 8.0), ("Animal", 7, 8)]
    (tmp_path / "pred.jsonl").write_text("".join(
        json.dumps({"label": lab, "onset_s": on, "offset_s": off}) + "\n" for lab, on, off in rows))
    return str(tmp_path / "pred.jsonl"), str(tmp_path / "ref.csv")


def test_eval_says_which_predicted_labels_it_ignored(tmp_path):
    pred, ref = write(tmp_path)
    res = CliRunner().invoke(main, ["eval", pred, "--reference", ref])
    assert res.exit_code == 0
    assert res.stderr.splitlines() == ["streamtag: ignored 2 predicted label(s) absent from the reference (3 events): "
                                       "Animal, Bark; --all-labels counts them as false positives"]
    assert "Animal" not in res.stdout


def test_eval_json_stays_one_document_and_all_labels_says_nothing(tmp_path):
    pred, ref = write(tmp_path)
    res = CliRunner().invoke(main, ["eval", pred, "--reference", ref, "--json"])
    assert set(json.loads(res.stdout)) == {"Dog", "Speech", "overall"} and "ignored 2" in res.stderr
    res = CliRunner().invoke(main, ["eval", pred, "--reference", ref, "--all-labels"])
    assert res.exit_code == 0 and res.stderr == "" and "Animal" in res.stdout
