"""Report stage: figures and videos a person looks at."""
