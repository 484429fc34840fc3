"""Scores and reports: scikit-learn metrics, pooled confusion matrices, the paper-shaped tables and plots."""
