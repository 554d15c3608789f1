"""Archive engine parts that need no Ray: inputs, shard plans, and shards equal to one whole run."""
import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings, strategies as st

from streamtag import Tagger
from streamtag.audio.sources import FileSource
from streamtag.engines.archive import count_windows, expand_inputs, plan_shards, shard_results, tag_shard
from streamtag.windows import WindowSpec
from tests.helpers import DEMO_CLIP


def test_inputs_expand_folders_recursively_and_list_files(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.wav", "a/b/y.FLAC", "a/b/z.ogg", "a/readme.md"):
        (tmp_path / name).write_bytes(b"")
    listing = tmp_path / "list.txt"
    listing.write_text("# archive\nrel.wav\n\n/abs/path.flac\n")
    got = expand_inputs([tmp_path / "a", listing, tmp_path / "a" / "x.wav", "missing.wav"])
    assert got == [str(tmp_path / "a/b/y.FLAC"), str(tmp_path / "a/b/z.ogg"), str(tmp_path / "a/x.wav"),
                   str(tmp_path / "rel.wav"), "/abs/path.flac", "missing.wav"]


@given(total=st.integers(1, 500), size=st.integers(1, 600))
def test_shards_cover_every_window_once_in_order(total, size):
    shards = plan_shards(0, "f.wav", total, size)
    covered = [k for s in shards for k in range(s.first_window, s.first_window + s.windows)]
    assert covered == list(range(total))
    assert [s.last for s in shards] == [False] * (len(shards) - 1) + [True]
    assert all(0 < s.windows <= size for s in shards)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """12.3 s of the demo clip at 44.1 kHz stereo (resampled to 32 kHz by the pipeline)."""
    x, sr = sf.read(DEMO_CLIP, dtype="float32", always_2d=True, frames=int(44100 * 12.3))
    path = tmp_path_factory.mktemp("clip") / "clip.wav"
    sf.write(path, np.stack([x[:, 0], x[:, 0] * 0.5], 1), sr, subtype="FLOAT")
    return str(path)


@pytest.fixture(scope="module")
def whole(mn04, clip):
    return list(Tagger(mn04, window=1.0, hop=0.5, device="cpu").tag_file(clip))


@settings(max_examples=6, deadline=None)
@given(size=st.integers(1, 30))
def test_shards_reassemble_to_the_single_run_for_any_shard_size(mn04, clip, whole, size):
    tagger = Tagger(mn04, window=1.0, hop=0.5, device="cpu")
    spec = tagger.window
    total, _ = count_windows(clip, spec)
    assert total == len(whole) == 24
    shards = plan_shards(0, clip, total, size)
    got = list(shard_results([tag_shard(tagger, s) for s in shards], shards, spec, tagger.labels, "mn04_as"))
    assert [r.index for r in got] == list(range(total))
    assert np.abs(np.stack([r.scores for r in got]) - np.stack([r.scores for r in whole])).max() <= 1e-4
    np.testing.assert_allclose([r.start_s for r in got], [r.start_s for r in whole])
    emb, ref = np.stack([r.embedding for r in got]), np.stack([r.embedding for r in whole])
    assert np.linalg.norm(emb - ref) / np.linalg.norm(ref) <= 1e-4


@pytest.mark.parametrize("start, stop", [(0, 32000), (7 * 32000 + 123, 9 * 32000 + 7), (320000, None), (5, 900)])
def test_a_shard_source_equals_the_same_part_of_the_whole_stream(clip, start, stop):
    full = np.concatenate(list(FileSource(clip).blocks(32000)))
    part = np.concatenate(list(FileSource(clip, start=start, stop=stop).blocks(32000)))
    ref = full[start:stop]
    assert len(part) == len(ref) and np.abs(part - ref).max() <= 1e-6


def test_a_shard_of_a_format_without_exact_seeking_decodes_up_to_it(tmp_path, clip):
    x, sr = sf.read(clip, dtype="float32")
    ogg = tmp_path / "clip.ogg"
    sf.write(ogg, x, sr, format="OGG")
    full = np.concatenate(list(FileSource(ogg).blocks(32000)))
    part = np.concatenate(list(FileSource(ogg, start=100000, stop=140000).blocks(32000)))
    assert np.abs(part - full[100000:140000]).max() <= 1e-6


def test_window_count_from_the_header(clip):
    spec = WindowSpec.from_seconds(10.0, 2.5, 32000)
    assert count_windows(clip, spec) == (spec.total(int(np.ceil(int(44100 * 12.3) * 32000 / 44100))),
                                         int(44100 * 12.3) / 44100)
