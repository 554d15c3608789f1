"""Weights resolution: explicit -> $STREAMTAG_HOME -> bundled -> download; refusals are explicit."""
import hashlib
import http.server
import os
import shutil
import threading
from functools import partial

import pytest
import torch

from streamtag import create_model
from streamtag.errors import WeightsError, WeightsUnavailableError
from streamtag.models import get_spec, resolve_weights
from streamtag.models.weights import load_checkpoint
from tests.helpers import MN04_WEIGHTS


@pytest.fixture
def file_server(tmp_path):
    """A local HTTP server over a folder (downloads are tested on loopback only)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_bundled_copy_is_used_when_cache_is_empty(isolated_home):
    found = resolve_weights(get_spec("mn04_as"))
    assert found.origin == "bundled"


def test_cached_file_wins_over_bundled(isolated_home):
    isolated_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(MN04_WEIGHTS, isolated_home / "mn04_as_mAP_432.pt")
    assert resolve_weights(get_spec("mn04_as")).origin == "cache"


def test_cached_file_with_wrong_hash_is_refused(isolated_home):
    isolated_home.mkdir(parents=True, exist_ok=True)
    data = bytearray(MN04_WEIGHTS.read_bytes())
    data[-100] ^= 0xFF
    (isolated_home / "mn04_as_mAP_432.pt").write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="does not match the published"):
        create_model("mn04_as")


def test_offline_message_names_file_url_and_folder(isolated_home):
    with pytest.raises(WeightsUnavailableError) as e:
        create_model("mn10_as")
    msg = str(e.value)
    assert "mn10_as_mAP_471.pt" in msg and str(isolated_home / "mn10_as_mAP_471.pt") in msg
    assert "http://127.0.0.1:9/mn10_as_mAP_471.pt" in msg and "\n" not in msg


def test_offline_message_gives_the_official_url_without_a_mirror(isolated_home, monkeypatch):
    monkeypatch.delenv("STREAMTAG_DOWNLOAD_BASE")
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(WeightsUnavailableError, match=r"https://github\.com/fschmid56/EfficientAT/releases/"
                                                      r"download/v0\.0\.1/mn05_as_mAP_443\.pt"):
        create_model("mn05_as")


def test_download_is_verified_and_renamed_into_the_cache(isolated_home, file_server, monkeypatch):
    root, url = file_server
    shutil.copy(MN04_WEIGHTS, root / "mn04_as_mAP_432.pt")
    monkeypatch.setenv("STREAMTAG_DOWNLOAD_BASE", url)
    monkeypatch.setattr("streamtag.models.weights.bundled_path", lambda name: None)
    found = resolve_weights(get_spec("mn04_as"))
    assert found.origin == "download" and found.path == isolated_home / "mn04_as_mAP_432.pt"
    assert hashlib.sha256(found.path.read_bytes()).hexdigest() == get_spec("mn04_as").sha256
    assert sorted(os.listdir(isolated_home)) == ["compiled", "mn04_as_mAP_432.pt"]  # no partial file left


def test_download_with_wrong_hash_leaves_nothing(isolated_home, file_server, monkeypatch):
    root, url = file_server
    (root / "mn04_as_mAP_432.pt").write_bytes(b"not the model")
    monkeypatch.setenv("STREAMTAG_DOWNLOAD_BASE", url)
    monkeypatch.setattr("streamtag.models.weights.bundled_path", lambda name: None)
    with pytest.raises(WeightsError, match="nothing was saved"):
        resolve_weights(get_spec("mn04_as"))
    assert [p.name for p in isolated_home.iterdir()] == ["compiled"]  # only the session's export cache


def test_explicit_weights_for_another_architecture_name_the_mismatch(random_checkpoint):
    with pytest.raises(WeightsError, match=r"does not fit the mn04_as architecture: shape mismatches"):
        create_model("mn04_as", weights=random_checkpoint("mn10_as"))


def test_explicit_weights_with_missing_keys_are_refused(tmp_path):
    sd = torch.load(MN04_WEIGHTS, weights_only=True)
    del sd["classifier.5.bias"]
    torch.save(sd, tmp_path / "cut.pt")
    with pytest.raises(WeightsError, match=r"missing keys: network|missing keys: classifier\.5\.bias"):
        create_model("mn04_as", weights=tmp_path / "cut.pt")


def test_explicit_weights_are_loaded_without_hash_check(tmp_path):
    sd = torch.load(MN04_WEIGHTS, weights_only=True)
    sd["classifier.5.bias"] = sd["classifier.5.bias"] + 1.0  # a "fine-tuned" file
    torch.save(sd, tmp_path / "tuned.pt")
    model = create_model("mn04_as", weights=tmp_path / "tuned.pt")
    assert model.weights.origin == "explicit"
    assert torch.equal(model.network.classifier[5].bias, sd["classifier.5.bias"])


@pytest.mark.parametrize("damage", ["truncate", "garbage", "text"])
def test_corrupt_checkpoint_is_refused(tmp_path, damage):
    path = tmp_path / "bad.pt"
    data = MN04_WEIGHTS.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00garbage" * 100,
                      "text": b"hello, these are not weights\n"}[damage])  # "h": a KeyError in torch's unpickler
    with pytest.raises(WeightsError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(path)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_checkpoint_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(1), "payload": _Exploit()}, path)
    with pytest.raises(WeightsError, match="could run code"):
        load_checkpoint(path)


def test_explicit_missing_file():
    with pytest.raises(WeightsError, match="not found"):
        create_model("mn04_as", weights="/nonexistent/mn04.pt")


def test_an_explicit_weights_files_digest_is_remembered_until_the_file_changes(tmp_path, monkeypatch):
    from streamtag.models import weights as w
    monkeypatch.setenv("STREAMTAG_HOME", str(tmp_path / "home"))
    f = tmp_path / "net.pt"
    f.write_bytes(b"a" * 1000)
    reads = []
    real = w.sha256_file
    monkeypatch.setattr(w, "sha256_file", lambda p: reads.append(p) or real(p))
    first = w.remembered_sha256(f)
    assert first == hashlib.sha256(b"a" * 1000).hexdigest() and len(reads) == 1
    assert w.remembered_sha256(f) == first and len(reads) == 1  # read from the cache, not the file
    f.write_bytes(b"b" * 1000)  # same size: the change time still moves
    assert w.remembered_sha256(f) == hashlib.sha256(b"b" * 1000).hexdigest() and len(reads) == 2
    memo = next((tmp_path / "home" / "digests").iterdir())
    memo.write_text("garbage")  # an unreadable entry is hashed again and rewritten
    assert w.remembered_sha256(f) == hashlib.sha256(b"b" * 1000).hexdigest() and len(reads) == 3
    shutil.rmtree(tmp_path / "home" / "digests")
    (tmp_path / "home" / "digests").write_text("")  # a cache that cannot be written (even by root) still gives it
    f.write_bytes(b"c" * 1000)
    assert w.remembered_sha256(f) == hashlib.sha256(b"c" * 1000).hexdigest() and len(reads) == 4
