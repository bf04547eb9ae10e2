"""Models stage: the visual tokenizer, the perceptual distance and the world models."""
