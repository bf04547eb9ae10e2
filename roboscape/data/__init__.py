"""Data stage: trajectory files, clip shards and the torch Dataset that streams them."""
