"""Interpretability techniques, each usable on any model the articles train."""
