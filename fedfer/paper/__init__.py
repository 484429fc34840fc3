"""The paper's grid (Tables 2–6, Figure 3, seed 002) run in-process on one world: the tables and
their sweeps (tables), every subject's adaptation variants (adaptation), the MSP-IMPROV corpus
(corpora) and the Markdown tables and plots beside the paper's numbers (figures)."""
