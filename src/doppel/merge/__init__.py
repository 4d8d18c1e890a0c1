"""Merge: the trained model's face put back onto every target frame, composited to sit in the plate."""
