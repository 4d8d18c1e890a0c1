"""Media: probing, upright decoding with exact timestamps, and encoding with the audio copied through."""

from doppel.media.encode import CODECS, VideoWriter
from doppel.media.probe import IMAGE_SUFFIXES, AudioInfo, MediaInfo, probe
from doppel.media.video import DecodedFrame, MediaReader, open_media

__all__ = [
    "CODECS",
    "IMAGE_SUFFIXES",
    "AudioInfo",
    "DecodedFrame",
    "MediaInfo",
    "MediaReader",
    "VideoWriter",
    "open_media",
    "probe",
]
