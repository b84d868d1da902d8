"""Training: dataset loaders, GAN models, losses and trainers (needs torch).

The built-in looks, classical baselines and ``make-dataset`` are torch-free: :mod:`styleforge.photo`.

This package's __init__ imports nothing heavy so that the CLI can list commands without torch.
"""
