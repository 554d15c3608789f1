"""`fetch_weights` against a real HTTP server on 127.0.0.1: a good file, a wrong sha256, a 404, a dropped
connection, and no server at all. Nothing but the verified file is ever left in $STREAMTAG_HOME."""
from __future__ import annotations

import dataclasses
import hashlib
import http.server
import threading

import pytest

from streamtag.errors import WeightsError, WeightsUnavailableError
from streamtag.models import get_spec, resolve_weights
from streamtag.models.download import fetch_weights, weights_destination

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB: several chunks, so progress is reported more than once
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.endswith("/good.pt"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path.endswith("/drop.pt"):  # announces the whole file, sends a third, then hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 3])
            self.wfile.flush()
            self.close_connection = True
        else:
            self.send_error(404, "Not Found")


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def spec_at(url: str, sha256: str | None = PAYLOAD_SHA):
    """mn01_as's entry with its file somewhere else (only the weights facts matter here)."""
    name = url.rsplit("/", 1)[1]
    return dataclasses.replace(get_spec("mn01_as"), file_name=name, url=url, sha256=sha256)


def home_files(home):
    return sorted(p.name for p in home.iterdir() if p.name != "compiled")


def test_a_good_file_is_saved_verified_with_progress_and_then_found(server, isolated_home, monkeypatch):
    monkeypatch.delenv("STREAMTAG_DOWNLOAD_BASE")
    spec = spec_at(f"{server}/good.pt")
    seen = []
    got = fetch_weights(spec, progress=lambda done, total: seen.append((done, total)))
    assert got.status == "downloaded" and got.path == weights_destination(spec) == isolated_home / "good.pt"
    assert got.path.read_bytes() == PAYLOAD and got.size == len(PAYLOAD)
    assert seen[0] == (0, len(PAYLOAD)) and seen[-1] == (len(PAYLOAD), len(PAYLOAD)) and len(seen) > 2
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert home_files(isolated_home) == ["good.pt"]
    # the second time it is found, verified, and not fetched again; weights resolution takes it from the cache
    assert fetch_weights(spec).status == "present"
    assert resolve_weights(spec).origin == "cache"


def test_a_corrupt_cached_copy_is_replaced(server, isolated_home, monkeypatch):
    monkeypatch.delenv("STREAMTAG_DOWNLOAD_BASE")
    spec = spec_at(f"{server}/good.pt")
    (isolated_home / "good.pt").write_bytes(b"not the file")
    assert fetch_weights(spec).status == "downloaded"
    assert (isolated_home / "good.pt").read_bytes() == PAYLOAD


def test_a_wrong_sha256_saves_nothing(server, isolated_home, monkeypatch):
    monkeypatch.delenv("STREAMTAG_DOWNLOAD_BASE")
    with pytest.raises(WeightsError, match=f"has sha256 {PAYLOAD_SHA[:16]}…, expected 0000000000000000…; nothing"):
        fetch_weights(spec_at(f"{server}/good.pt", sha256="0" * 64))
    assert home_files(isolated_home) == []


def test_a_404_is_one_line_with_the_url_and_where_to_save_it(server, isolated_home, monkeypatch):
    monkeypatch.delenv("STREAMTAG_DOWNLOAD_BASE")
    spec = spec_at(f"{server}/missing.pt")
    with pytest.raises(WeightsUnavailableError) as e:
        fetch_weights(spec)
    assert str(e.value) == (f"mn01_as: {server}/missing.pt answered HTTP 404 Not Found; download it yourself and "
                            f"save it as {isolated_home / 'missing.pt'}")
    assert home_files(isolated_home) == []


def test_a_dropped_connection_saves_nothing_and_says_how_far_it_got(server, isolated_home, monkeypatch):
    monkeypatch.delenv("STREAMTAG_DOWNLOAD_BASE")
    with pytest.raises(WeightsError, match=f"stopped after {len(PAYLOAD) // 3} of {len(PAYLOAD)} bytes"):
        fetch_weights(spec_at(f"{server}/drop.pt"))
    assert home_files(isolated_home) == []


def test_offline_the_line_names_the_url_and_the_path(isolated_home):
    # conftest points STREAMTAG_DOWNLOAD_BASE at a closed port: the mirror URL is the one named
    spec = get_spec("mn10_as")
    with pytest.raises(WeightsUnavailableError) as e:
        fetch_weights(spec, timeout=5)
    line = str(e.value)
    assert "\n" not in line and line.startswith("mn10_as: cannot download (")
    assert line.endswith(f"download http://127.0.0.1:9/{spec.file_name} and save it as "
                         f"{isolated_home / spec.file_name}")
    assert home_files(isolated_home) == []


def test_a_model_behind_a_browser_page_names_the_page(isolated_home, monkeypatch):
    monkeypatch.delenv("STREAMTAG_DOWNLOAD_BASE")
    spec = get_spec("eat_base_epoch10")
    with pytest.raises(WeightsUnavailableError, match=f"download {spec.page} and save it as "):
        fetch_weights(spec)


def test_the_bundled_model_needs_no_download(isolated_home):
    got = fetch_weights("mn04_as")
    assert got.status == "bundled" and got.path.name == "mn04_as_mAP_432.pt"
