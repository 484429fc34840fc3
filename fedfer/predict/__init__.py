"""Using a trained v(): streaming prediction on videos or a camera (`fedfer predict`) and export for
devices (`fedfer export`).

    choice    which v() (a run's central one, a subject's personal one, any checkpoint) and its features
    pipeline  frame → face → f() → one v() step, in PyTorch or ONNX Runtime
    sources   video files and cameras as timed RGB frames
    outputs   per-frame and per-clip tables, annotated videos
    exported  the ONNX export, its card, and the ONNX Runtime engine that runs it
"""
