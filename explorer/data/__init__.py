"""Data sets that are available offline: generated 2-D sets, scikit-learn's digits, local text."""
