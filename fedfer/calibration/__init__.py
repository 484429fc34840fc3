"""Calibration of the synthetic world to published inputs only.

The world's knobs (`knobs`) are fitted to targets that involve no adaptation result (`targets`):
CREMA-D's perceived-label statistics (`label_stats`), the paper's Table 1 for g() on the stills and
the "Before" columns of Tables 2-5 for the central v(). Nothing here imports personalization,
pseudo-labelling or federation (tests/test_calibration.py checks the import graph), so a
calibration cannot see the effect the world is later used to measure.
"""
