"""Speech to text behind one protocol: voice questions and video soundtracks share it (see base.py)."""

from smartalbum.speech.base import SAMPLE_RATE, Segment, Transcriber, Transcript

__all__ = ["SAMPLE_RATE", "Segment", "Transcriber", "Transcript"]
