"""The local review-and-repair web app (`doppel studio`)."""
