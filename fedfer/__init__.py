"""fedfer: privacy-preserving personalization of video facial expression recognition (FER)
with federated learning on Flower (after Salman & Busso, ICMI 2022)."""

__version__ = "0.1.0"
