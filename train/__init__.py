"""Training: photo datasets, built-in looks, GAN models, losses and trainers (needs torch).

This package's __init__ imports nothing heavy so that the CLI can list commands without torch.
"""
