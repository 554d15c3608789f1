import pytest

from streamtag import load_labels
from streamtag.errors import LabelsError
from streamtag.models.labels import parse_labels
from tests.helpers import SHARED_LABELS_CSV, needs_shared


@needs_shared
def test_bundled_labels_equal_the_shared_file():
    assert load_labels() == parse_labels(SHARED_LABELS_CSV)


def test_bundled_labels_are_the_527_audioset_classes_in_model_order():
    labels = load_labels()
    assert len(labels) == 527 and labels.names[0] == "Speech" and labels.mids[0] == "/m/09x0r"


def test_lookup_by_name_or_mid_and_close_matches():
    labels = load_labels()
    assert labels.index("dog") == labels.index("/m/0bt9lr")
    with pytest.raises(LabelsError, match="did you mean 'Dog'"):
        labels.index("Dgo")


@pytest.mark.parametrize("content, message", [
    ("a,b,c\n", "header must be"), ("index,mid,display_name\n0,/m/x,X\n", "expected 527 rows"),
])
def test_malformed_label_files_are_refused(tmp_path, content, message):
    p = tmp_path / "labels.csv"
    p.write_text(content)
    with pytest.raises(LabelsError, match=message):
        load_labels(p)
