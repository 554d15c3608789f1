import numpy as np
import pytest
import soundfile as sf

from streamtag.audio import ArraySource, FileSource, downmix
from streamtag.errors import AudioReadError, ConfigError

from tests.helpers import CLIP32, CLIP44, EFFAT, golden, needs_shared


@pytest.mark.parametrize("block_frames", [441, 4096, 1 << 16])
def test_44k1_stereo_file_streams_to_librosas_samples(block_frames):
    """librosa.load(sr=32000, mono=True) as the official tagger calls it: float32 channel mean, one-shot soxr HQ."""
    import soxr
    x, rate = sf.read(CLIP44, dtype="float32")
    expected = soxr.resample(x.mean(axis=1, dtype=np.float32), rate, 32000, quality="HQ")
    y = np.concatenate(list(FileSource(CLIP44, block_frames=block_frames).blocks(32000)))
    np.testing.assert_array_equal(y, expected)


def test_32k_mono_file_is_read_as_is():
    y = np.concatenate(list(FileSource(CLIP32).blocks(32000)))
    np.testing.assert_array_equal(y, sf.read(CLIP32, dtype="int16")[0] / np.float32(32768))


@needs_shared
@pytest.mark.parametrize("block_frames", [441, 4096, 1 << 16])
def test_44k1_stereo_file_streams_to_the_reference_samples(block_frames):
    src = FileSource(EFFAT / "input_44k1_stereo.wav", block_frames=block_frames)
    y = np.concatenate(list(src.blocks(32000)))
    np.testing.assert_array_equal(y, golden("mn04_as", "input_44k1_stereo")["wave32k"])


@needs_shared
def test_32k_file_is_not_resampled():
    y = np.concatenate(list(FileSource(EFFAT / "input_32k_mono.wav").blocks(32000)))
    np.testing.assert_array_equal(y, golden("mn04_as", "input_32k_mono")["wave32k"])


def test_downmix_averages_channels_in_float32():
    x = np.array([[1.0, 0.0], [0.5, 0.25]], np.float32)
    np.testing.assert_array_equal(downmix(x), [0.5, 0.375])


@pytest.mark.parametrize("channels", [1, 2, 3, 6, 8])
def test_downmix_is_bit_identical_to_librosa_to_mono(channels):
    """librosa averages a [channels, frames] array over axis 0; 8 channels is where a naive mean differs."""
    x = np.random.default_rng(channels).standard_normal((50000, channels)).astype(np.float32)
    np.testing.assert_array_equal(downmix(x), np.mean(np.ascontiguousarray(x.T), axis=0))


@pytest.mark.parametrize("channels", [1, 2, 3, 6, 8, 255, 256, 300])
def test_16_bit_pcm_downmixes_to_the_bits_of_its_float32_samples(channels):
    """FileSource reads 16-bit PCM as int16: averaged, it equals librosa's mean of soundfile's x / 32768."""
    x = np.random.default_rng(channels).integers(-32768, 32768, (4000, channels)).astype(np.int16)
    x[:3] = np.array([[32767], [-32768], [0]], np.int16)  # the extremes, on every channel
    as_float = x.astype(np.float32) / np.float32(32768)
    np.testing.assert_array_equal(downmix(x), np.mean(np.ascontiguousarray(as_float.T), axis=0))
    np.testing.assert_array_equal(downmix(x[:, 0]), as_float[:, 0])  # one channel as a 1-D block


@pytest.mark.parametrize("channels, rate", [(1, 32000), (2, 44100), (6, 48000)])
def test_a_16_bit_file_reads_as_the_float_file_of_its_samples(tmp_path, channels, rate):
    x = np.random.default_rng(rate).integers(-32768, 32768, (3 * rate, channels)).astype(np.int16)
    sf.write(tmp_path / "pcm16.wav", x, rate, subtype="PCM_16")
    sf.write(tmp_path / "float.wav", x.astype(np.float32) / np.float32(32768), rate, subtype="FLOAT")
    pcm, flt = (np.concatenate(list(FileSource(tmp_path / n).blocks(32000))) for n in ("pcm16.wav", "float.wav"))
    assert len(pcm) == 3 * 32000
    np.testing.assert_array_equal(pcm, flt)


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.wav", "no such file"),
    (lambda p: p, "is a directory"),
    (lambda p: (p / "fake.wav").write_bytes(b"this is not audio at all" * 10) and p / "fake.wav",
     "not a readable audio file"),
    (lambda p: sf.write(p / "empty.wav", np.zeros(0, np.float32), 16000) or p / "empty.wav", "no audio frames"),
    (lambda p: (p / "zero.wav").touch() or p / "zero.wav", r"zero.wav: empty file \(0 bytes\)$"),
])
def test_bad_files_raise_audio_read_error(tmp_path, make, message):
    with pytest.raises(AudioReadError, match=message):
        FileSource(make(tmp_path))


def test_array_source_rejects_rate_change():
    src = ArraySource()
    src.feed(np.zeros(10, np.float32), 16000)
    with pytest.raises(ConfigError, match="sample rate changed"):
        src.feed(np.zeros(10, np.float32), 32000)


def test_closing_from_another_thread_during_reads_ends_the_stream_without_freeing_the_file_under_it(tmp_path):
    """Stream.stop() closes the source from another thread while its thread may be inside libsndfile's read:
    that used to free the file under the read (a segfault, seen once in a few full test runs)."""
    import threading

    path = tmp_path / "long.flac"
    sf.write(path, np.random.default_rng(0).standard_normal((44100 * 20, 2)).astype(np.float32) * 0.1, 44100)
    for _ in range(30):
        src = FileSource(path, block_frames=4096)
        started, blocks, errors = threading.Event(), [], []

        def read():
            try:
                for b in src.blocks(32000):
                    blocks.append(len(b))
                    started.set()
            except Exception as e:  # noqa: BLE001 - the assertion below names it
                errors.append(e)
                started.set()
        reader = threading.Thread(target=read)
        reader.start()
        assert started.wait(10)
        for _ in range(50):  # close while reads go on
            src.close()
        reader.join(10)
        assert not reader.is_alive() and errors == [] and 0 < sum(blocks) < 32000 * 20


def test_a_0_byte_file_is_named_empty_by_open_audio_too(tmp_path):
    """A 0-byte file is neither libsndfile's nor FFmpeg's to explain: one plain reason, not both readers' errors."""
    from streamtag.audio.inputs import open_audio
    (tmp_path / "zero.flac").touch()
    with pytest.raises(AudioReadError) as e:
        open_audio(tmp_path / "zero.flac")
    assert str(e.value) == f"{tmp_path / 'zero.flac'}: empty file (0 bytes)"
