"""From video files to cached features: decoding, face detection, the frozen f(), the feature store,
the corpus readers and the actor splits. Knows nothing of training or of Flower."""
