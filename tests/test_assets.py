"""The embedded default: bundled files match the published hashes and ship inside a built wheel."""
import hashlib
import os
import re
import subprocess
import sys
import zipfile

import pytest

from streamtag.models import get_spec
from tests.helpers import ASSETS, ROOT, SHARED, needs_shared

DEMO_CLIP = "speech_dog_12s.flac"


def published_hashes():
    text = (SHARED / "models" / "README.md").read_text()
    return dict(re.findall(r"\| `([^`]+)` \|[^|]*\| `([0-9a-f]{64})` \|", text))


def test_bundled_checkpoint_has_the_registered_official_hash():
    spec = get_spec("mn04_as")
    assert hashlib.sha256((ASSETS / spec.file_name).read_bytes()).hexdigest() == spec.sha256


@needs_shared
@pytest.mark.parametrize("name", ["mn04_as_mAP_432.pt", "class_labels_indices.csv"])
def test_bundled_asset_hash_matches_the_shared_readme(name):
    assert hashlib.sha256((ASSETS / name).read_bytes()).hexdigest() == published_hashes()[name]


def test_notice_attributes_both_assets():
    notice = (ASSETS / "NOTICE").read_text()
    assert "MIT" in notice and "CC BY 4.0" in notice and "EfficientAT" in notice


@pytest.mark.slow
def test_built_wheel_carries_the_assets_and_tags_offline(tmp_path, isolated_home):
    """`pip wheel --no-deps .`, installed (not editable) apart from the checkout, tags the demo clip."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                    str(ROOT)], check=True, timeout=600)
    wheel = next((tmp_path / "dist").glob("streamtag-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for f in ("streamtag/assets/mn04_as_mAP_432.pt", "streamtag/assets/class_labels_indices.csv",
              "streamtag/assets/NOTICE"):
        assert f in names
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import streamtag; print(streamtag.__file__)"], env=env,
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(site))
    res = subprocess.run([sys.executable, "-m", "streamtag", "tag", str(ROOT / "demos" / DEMO_CLIP)], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "using the bundled mn04_as" in res.stderr and "Dog" in res.stdout
