"""Scores of a model: scikit-learn metrics, pooled confusion matrices, statistics over seeds and subjects.
The run's report is `fedfer.runs.report`; the grid's tables and plots are `fedfer.paper.figures`."""
