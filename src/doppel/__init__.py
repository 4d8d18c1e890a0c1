"""doppel: a face-replacement studio for visual-effects work, with provenance built in."""

__version__ = "0.1.0"
