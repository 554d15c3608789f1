"""Audio input: sources (libsndfile, FFmpeg, network streams, pushed arrays), the ring buffer, streaming
resampling and recording start times."""
from .clock import StartClock
from .ffmpeg import FFmpegSource, NetworkStream
from .inputs import InputOptions, open_audio
from .resample import StreamResampler, expected_length
from .ring import RingBuffer, RingClosed
from .sources import ArraySource, AudioSource, FileSource, Gap, downmix

__all__ = ["ArraySource", "AudioSource", "FFmpegSource", "FileSource", "Gap", "InputOptions", "NetworkStream",
           "RingBuffer", "RingClosed", "StartClock", "StreamResampler", "downmix", "expected_length", "open_audio"]
