"""Training stage: the Accelerate training loop shared by the tokenizer and the world models."""
