"""Torch-free photo work shared by train, export, runtime and benchmarks (numpy + Pillow).

- :mod:`styleforge.photo.looks`     the built-in looks (demo styles and ground truth)
- :mod:`styleforge.photo.random_looks` looks drawn from a seed (``random-tone-N``, ``random-local-N``)
- :mod:`styleforge.photo.look_blocks` the operators both are built from, and the ``Look`` record
- :mod:`styleforge.photo.baselines` classical colour transfer (Reinhard, histogram, MKL, sliced OT,
  levels) and the sliced Wasserstein distance in CIELAB
- :mod:`styleforge.photo.dataset`   ``styleforge make-dataset``: a look's dataset split by scene
- :mod:`styleforge.photo.photos`    the general photo loader (paths, arrays or images -> small uint8 RGB)

Nothing here imports torch, tensorflow, :mod:`styleforge.train` or :mod:`styleforge.export`;
scipy and scikit-image load inside the functions that need them.
"""
