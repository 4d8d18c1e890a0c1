"""Training: DeepFaceLab-style face-swap autoencoders, their data pipeline, losses, checkpoints and loop."""
