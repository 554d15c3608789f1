"""Test recordings in the containers users bring, written with PyAV's own encoders (FFmpeg bundled in its wheel)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import soundfile as sf

from tests.helpers import DEMO_CLIP


def demo_pcm16() -> tuple[np.ndarray, int]:
    """The demo clip as int16 [frames, 2] and its rate (44.1 kHz): the samples every container test encodes."""
    x, rate = sf.read(DEMO_CLIP, dtype="int16", always_2d=True)
    return x, rate


def write_wav(path, x: np.ndarray, rate: int) -> None:
    """The same int16 samples as a WAV (what the FFmpeg path must match)."""
    sf.write(path, x, rate, subtype="PCM_16")


def encode(path, x: np.ndarray, rate: int, codec: str, container: str | None = None, *, video: bool = False,
           extra_audio: np.ndarray | None = None, drop_packets: tuple[int, ...] = (), metadata: dict | None = None,
           bit_rate: int | None = None) -> None:
    """Encode int16 [frames, channels] samples with `codec` into `path`; optionally with a video stream first,
    a second audio stream (`extra_audio`), packets left out (`drop_packets`, 1-based) or container tags."""
    import av
    layout = {1: "mono", 2: "stereo"}[x.shape[1]]
    out = av.open(str(path), "w", format=container)
    if metadata:
        out.metadata.update(metadata)
    picture = None
    if video:
        picture = out.add_stream("mpeg4", rate=10)
        picture.width, picture.height, picture.pix_fmt = 64, 48, "yuv420p"
    streams = [(out.add_stream(codec, rate=rate, layout=layout), x)]
    if extra_audio is not None:
        streams.append((out.add_stream(codec, rate=rate, layout=layout), extra_audio))
    for s, _ in streams:
        if bit_rate:
            s.bit_rate = bit_rate
    if picture is not None:
        frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
        for k in range(int(len(x) / rate * 10) + 1):
            frame.pts, frame.time_base = k, Fraction(1, 10)
            out.mux(picture.encode(frame))
        out.mux(picture.encode(None))
    for s, samples in streams:
        fmt = s.codec_context.format.name
        size = s.codec_context.frame_size or 4096
        packets = 0
        for i in range(0, len(samples), size):
            block = samples[i:i + size]
            data = block.astype(np.int32) << 16 if fmt.startswith("s32") else block
            data = data.astype(np.float32) / 32768 if fmt.startswith("flt") else data
            data = np.ascontiguousarray(data.T) if fmt.endswith("p") else np.ascontiguousarray(data.reshape(1, -1))
            frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = rate, i, Fraction(1, rate)
            for p in s.encode(frame):
                packets += 1
                if packets not in drop_packets:
                    out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    out.close()
