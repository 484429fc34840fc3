"""The networks f(), g(), v(), their checkpoints, central training, pseudo labels and a subject's
local personalization. Plain PyTorch: knows nothing of Flower."""
