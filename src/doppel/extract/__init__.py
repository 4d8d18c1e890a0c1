"""Extraction: faces found, landmarked, aligned, masked, identified and sorted."""
