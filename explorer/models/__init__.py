"""Models: the small networks the articles train, and the single door to language models."""
