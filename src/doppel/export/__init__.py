"""Export: the finished shot, encoded at the plate's timestamps with its audio, always with provenance marks."""
