"""styleforge: learn a portrait photography style with a GAN and ship it as a tiny verified model.

The package is one import namespace built from the repository's top-level folders:

- ``styleforge.photo``      (``styleforge/photo/``) torch-free looks, classical colour transfer,
  dataset building (numpy + Pillow; for any of the areas below)
- ``styleforge.train``      (``train/``)      data loaders, models, losses, trainers (needs torch)
- ``styleforge.export``     (``export/``)     ONNX / TFLite / Core ML export and the fidelity gate
- ``styleforge.runtime``    (``runtime/``)    torch-free stylizer: numpy + Pillow + one interpreter
- ``styleforge.benchmarks`` (``benchmarks/``) latency / memory / fidelity benchmarks

Importing ``styleforge`` (or ``styleforge.runtime``) never imports torch or tensorflow.
"""

__version__ = "0.1.0"
