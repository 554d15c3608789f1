"""Audio input: sources, the ring buffer and streaming resampling."""
from .resample import StreamResampler, expected_length
from .ring import RingBuffer, RingClosed
from .sources import ArraySource, AudioSource, FileSource, Gap, downmix

__all__ = ["ArraySource", "AudioSource", "FileSource", "Gap", "RingBuffer", "RingClosed",
           "StreamResampler", "downmix", "expected_length"]
