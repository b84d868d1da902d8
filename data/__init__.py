"""Data files that ship with styleforge (installed as ``styleforge.photo.data``).

``album/``: the KPhotoAlbum demo album (23 photos, CC-BY-SA-4.0, see ``album/ATTRIBUTION.md``),
located and described by :mod:`styleforge.photo.album`.

``corpus/``: the learning-curve corpus (219 photos of distinct scenes, credited one by one in
``corpus/ATTRIBUTION.md``), located and described by :mod:`styleforge.photo.corpus`; ``make corpus``
regenerates it.
"""
