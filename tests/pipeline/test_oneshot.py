"""streamtag.tag_file: one call, the whole recording as arrays equal to the windows the iterator gives."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

import streamtag
from streamtag.errors import ConfigError
from tests.helpers import DEMO_CLIP


def test_tag_file_returns_the_iterators_windows_as_arrays(mn04):
    tags = streamtag.tag_file(DEMO_CLIP, mn04, window=1.0, hop=0.5)
    windows = list(streamtag.Tagger(mn04, window=1.0, hop=0.5).tag_file(DEMO_CLIP))
    assert len(tags) == len(windows) > 20
    np.testing.assert_array_equal(tags.start_s, [r.start_s for r in windows])
    np.testing.assert_array_equal(tags.end_s, [r.end_s for r in windows])
    np.testing.assert_array_equal(tags.scores, np.stack([r.scores for r in windows]))
    np.testing.assert_array_equal(tags.embeddings, np.stack([r.embedding for r in windows]))
    assert (tags.window_s, tags.hop_s, tags.model) == (1.0, 0.5, "mn04_as")
    np.testing.assert_array_equal(tags.score("Dog"), [r.score("Dog") for r in windows])
    best, peak = tags.top(1)[0]
    assert peak == float(tags.scores.max()) and tags.score(best).max() == peak


def test_tag_file_by_name_with_the_tagger_options_and_a_bad_file(tmp_path):
    tags = streamtag.tag_file(DEMO_CLIP, "mn04_as", window=10, hop=5, device="cpu")
    assert len(tags) == 2 and tags.embeddings.shape == (2, 384) and tags.scores.shape == (2, 527)
    (tmp_path / "zero.wav").touch()
    with pytest.raises(streamtag.AudioReadError, match="empty file"):
        streamtag.tag_file(tmp_path / "zero.wav", "mn04_as")


def test_file_tags_refuses_arrays_of_different_lengths():
    from streamtag.models import load_labels
    with pytest.raises(ConfigError, match="window count"):
        streamtag.FileTags(path="x", model="m", window_s=1, hop_s=0.5, start_s=np.zeros(3), end_s=np.zeros(3),
                           scores=np.zeros((2, 527)), embeddings=np.zeros((3, 4)), labels=load_labels(),
                           lost_samples=np.zeros(3, np.int64))


def test_streamtag_warnings_print_as_one_cli_line_and_others_are_untouched():
    from streamtag.notices import restore_warnings
    from streamtag.pipeline import DefaultModelFallback, ShortWindowWarning
    out = io.StringIO()
    delegated = []
    with warnings.catch_warnings():
        warnings.showwarning = lambda *args, **kw: delegated.append(args[:4])  # whatever showed warnings before
        streamtag.show_warnings_as_lines(out)
        warnings.simplefilter("always")
        warnings.warn("using the bundled mn04_as (mn10_as is not here)", DefaultModelFallback, stacklevel=1)
        warnings.warn("a 1 s window is short\nfor beats", ShortWindowWarning, stacklevel=1)
        warnings.warn("not ours", UserWarning, stacklevel=1)
        restore_warnings()
    assert out.getvalue().splitlines() == ["streamtag: using the bundled mn04_as (mn10_as is not here)",
                                           "streamtag: warning: a 1 s window is short for beats"]
    assert [(str(m), c) for m, c, *_ in delegated] == [("not ours", UserWarning)]
