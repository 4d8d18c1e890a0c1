"""Occlusion masks: which pixels of a face crop are the face's own skin, not a hand, a microphone or hair.

labels     include/exclude polygons per face, versioned (drawn, suggested, confirmed)
propagate  carry a drawn label to neighbouring frames by the face's motion, as suggestions
synth      self-supervised examples: the mesh polygon as base label, synthetic occluders pasted over it
model      the small segmentation network
train      `doppel mask train`: resumable training with safetensors checkpoints
apply      `doppel mask apply`: a temporally smoothed mask per face, stored for merge
"""
