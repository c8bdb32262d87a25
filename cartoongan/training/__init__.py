"""Training: networks, VGG content backbones, data and the training loop (needs the `train` extra)."""
