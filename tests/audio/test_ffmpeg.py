"""The FFmpeg source (PyAV): the containers libsndfile cannot read, sample-exact against the WAV of the same samples."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from streamtag import Tagger
from streamtag.audio.clock import StartClock
from streamtag.audio.ffmpeg import FFmpegSource, creation_time
from streamtag.audio.inputs import InputOptions, open_audio
from streamtag.audio.sources import FileSource, Gap
from streamtag.cli import main
from streamtag.errors import AudioReadError, ConfigError
from tests.audio.media import demo_pcm16, encode, write_wav
from tests.helpers import LABELS_CSV

pytest.importorskip("av", reason="needs PyAV (the [ffmpeg] extra, part of [test])")

RATE = 32000


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """The demo clip's int16 samples as WAV and in each container, plus variants (a second stream, lost packets)."""
    folder = tmp_path_factory.mktemp("media")
    x, rate = demo_pcm16()
    files = {"wav": folder / "demo.wav", "reversed_wav": folder / "reversed.wav"}
    write_wav(files["wav"], x, rate)
    write_wav(files["reversed_wav"], x[::-1].copy(), rate)
    for key, name, codec, kw in [
            ("alac", "alac.m4a", "alac", {}), ("aac", "aac.m4a", "aac", {}), ("flac_mkv", "flac.mkv", "flac", {}),
            ("mp4_video", "video.mp4", "aac", {"video": True}), ("opus_webm", "opus.webm", "libopus", {}),
            ("two_streams", "two.mkv", "flac", {"extra_audio": x[::-1].copy()}),
            ("dropped", "dropped.mkv", "flac", {"drop_packets": (20, 21, 22)})]:
        files[key] = folder / name
        encode(files[key], x, 48000 if codec == "libopus" else rate, codec, **kw)
    return files, x, rate


def decoded(source, rate=RATE):
    """All audio samples of a source at `rate` (gaps as zeros) and the gap total."""
    blocks, gaps = [], 0
    for b in source.blocks(rate):
        if isinstance(b, Gap):
            gaps += b.samples
            blocks.append(np.zeros(b.samples, np.float32))
        else:
            blocks.append(b)
    return np.concatenate(blocks), gaps


def tag_all(mn04, path, **kw):
    tagger = Tagger(mn04, window=1.0, hop=0.5, labels=LABELS_CSV, device="cpu")
    results = list(tagger.tag_file(path, **kw))
    return np.stack([r.scores for r in results]), tagger.stats


@pytest.mark.parametrize("key", ["alac", "flac_mkv"])
def test_lossless_containers_equal_the_wav(media, mn04, key):
    files, x, rate = media
    source = open_audio(files[key])
    assert isinstance(source, FFmpegSource)
    ours, gaps = decoded(source)
    ref, _ = decoded(FileSource(files["wav"]))
    assert gaps == 0 and len(ours) == len(ref)
    np.testing.assert_array_equal(ours, ref)  # same int16 samples, same downmix and resampler: same bits
    scores, _ = tag_all(mn04, files[key])
    wav_scores, _ = tag_all(mn04, files["wav"])
    assert scores.shape == wav_scores.shape and np.abs(scores - wav_scores).max() <= 1e-6


AAC_SCORE_TOL = 0.1  # AAC (FFmpeg's encoder, default bit rate) against the WAV: measured max 0.074 on the demo


@pytest.mark.parametrize("key", ["aac", "mp4_video"])
def test_aac_starts_at_the_first_sample_and_scores_close_to_the_wav(media, mn04, key):
    files, x, rate = media
    source = open_audio(files[key])
    assert source.channels == 2 and source.sample_rate == rate
    # the container's declared length trims the encoder's padding; FFmpeg drops the priming it reports
    assert abs(source.frames - len(x)) < 1024
    ours, gaps = decoded(source, rate)
    ref = x.mean(axis=1) / 32768
    assert gaps == 0 and abs(len(ours) - len(ref)) < 1024
    n = min(len(ours), len(ref))
    lag = np.argmax(np.correlate(ours[:rate], ref[:rate], "full")) - (rate - 1)
    assert lag == 0  # no priming delay: sample k is the original's sample k
    assert np.corrcoef(ours[:n], ref[:n])[0, 1] > 0.99
    scores, _ = tag_all(mn04, files[key])
    wav_scores, _ = tag_all(mn04, files["wav"])
    assert scores.shape == wav_scores.shape
    assert np.abs(scores - wav_scores).max() <= AAC_SCORE_TOL
    assert (scores.argmax(1) == wav_scores.argmax(1)).mean() >= 0.9


def test_opus_in_webm_keeps_its_length(media, mn04):
    files, x, _ = media
    source = open_audio(files["opus_webm"])
    assert source.sample_rate == 48000
    ours, gaps = decoded(source, 48000)
    assert gaps == 0 and abs(len(ours) - len(x)) <= 1  # Opus pre-skip dropped as the container says
    scores, _ = tag_all(mn04, files["opus_webm"])
    assert scores.shape[1] == 527 and np.isfinite(scores).all()


def test_a_video_file_tags_its_soundtrack_and_stream_picks_another(media, mn04):
    files, _, _ = media
    assert open_audio(files["mp4_video"]).channels == 2  # the audio stream, after the video one
    second, _ = tag_all(mn04, files["two_streams"], options=InputOptions(stream=1))
    reversed_wav, _ = tag_all(mn04, files["reversed_wav"])
    assert np.abs(second - reversed_wav).max() <= 1e-6
    with pytest.raises(ConfigError, match="has 2 audio stream"):
        open_audio(files["two_streams"], InputOptions(stream=2))
    with pytest.raises(ConfigError, match="has 1 audio stream"):
        open_audio(files["mp4_video"], InputOptions(stream=1))


def test_missing_packets_are_counted_as_lost_audio(media, mn04):
    files, _, rate = media
    source = open_audio(files["dropped"])
    ours, gaps = decoded(source, rate)
    ref, _ = decoded(FileSource(files["wav"]), rate)
    frame = 4608  # FLAC's block in these files
    assert gaps == 3 * frame and source.lost_frames == 3 * frame
    assert len(ours) == len(ref)  # the gap keeps later audio at its time
    start = 19 * frame
    np.testing.assert_array_equal(ours[:start], ref[:start])
    np.testing.assert_array_equal(ours[start + 3 * frame:], ref[start + 3 * frame:])
    scores, stats = tag_all(mn04, files["dropped"])
    assert stats.lost_samples == round(3 * frame * RATE / rate) and stats.lossy_windows >= 2


def test_a_truncated_container_fails_at_its_position_after_the_windows_before(media, mn04, tmp_path):
    files, _, _ = media
    cut = tmp_path / "cut.mkv"
    data = files["flac_mkv"].read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    tagger = Tagger(mn04, window=1.0, hop=0.5, labels=LABELS_CSV, device="cpu")
    got = []
    with pytest.raises(AudioReadError, match=r"cut\.mkv: ended at \d+\.\d\d s of 12\.\d\d s"):
        for r in tagger.tag_file(cut):
            got.append(r)
    assert len(got) >= 8 and all(r.end_s <= 7.0 for r in got)  # whole windows of the first half, none padded
    res = CliRunner().invoke(main, ["tag", str(cut), "--window", "1", "--hop", "0.5", "--device", "cpu", "-q"])
    assert res.exit_code == 1 and len(res.stderr.strip().splitlines()) == 1 and "cut.mkv: ended at" in res.stderr


def test_the_cli_tags_an_m4a_like_its_wav(media, tmp_path):
    files, _, _ = media
    out = {}
    for key in ("alac", "wav"):
        res = CliRunner().invoke(main, ["tag", str(files[key]), "--window", "2", "--hop", "1", "--format", "jsonl",
                                        "--device", "cpu", "-q"])
        assert res.exit_code == 0, res.stderr
        out[key] = [{k: v for k, v in json.loads(ln).items() if k != "file"} for ln in res.stdout.splitlines()]
    assert out["alac"] == out["wav"] and len(out["wav"]) == 12


def test_folders_include_the_ffmpeg_containers(media, tmp_path):
    from streamtag.engines.archive import expand_inputs
    files, _, _ = media
    found = {p.rsplit("/", 1)[1] for p in expand_inputs([str(files["wav"].parent)])}
    assert {"alac.m4a", "video.mp4", "flac.mkv", "opus.webm", "demo.wav"} <= found


def test_creation_time_is_read_from_the_container(tmp_path):
    x, rate = demo_pcm16()
    path = tmp_path / "memo.m4a"
    encode(path, x[:rate], rate, "aac", metadata={"creation_time": "2026-05-01T05:30:00.000000Z"})
    assert creation_time(str(path)) == "2026-05-01T05:30:00.000000Z"
    assert StartClock("metadata").start_of(str(path)).isoformat() == "2026-05-01T05:30:00+00:00"
    bare = tmp_path / "bare.mkv"
    encode(bare, x[:rate], rate, "flac")
    with pytest.raises(AudioReadError, match="records no creation time"):
        creation_time(str(bare))


def test_unreadable_by_both_gives_both_reasons(tmp_path):
    path = tmp_path / "junk.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    with pytest.raises(AudioReadError, match=r"junk\.mp4: neither libsndfile \(.+\) nor FFmpeg \(.+\) reads it"):
        open_audio(path)
