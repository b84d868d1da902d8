"""The vendored learning-curve corpus: exact bytes, a credit and licence per photo, enough distinct
scenes, real decodable photos, and the Qt resource reader the build tool uses."""

import hashlib
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from styleforge.photo.corpus import (
    corpus_dir,
    corpus_grouping,
    corpus_photos,
    is_corpus_folder,
    verify_corpus,
)
from styleforge.photo.corpus_build import CorpusBuildError, near_duplicates, read_rcc

MIN_PHOTOS = 120
LICENCES = {"public-domain", "CC0-1.0", "CC-BY-2.0", "CC-BY-3.0", "CC-BY-4.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0", "GPL-2+"}


def test_every_photo_matches_its_sha256_and_has_a_credit():
    assert verify_corpus() == []
    photos = corpus_photos()
    assert len(photos) >= MIN_PHOTOS
    for photo in photos:
        assert hashlib.sha256(photo.path.read_bytes()).hexdigest() == photo.sha256
        assert photo.credit.strip() and photo.source.strip()
        assert photo.license in LICENCES, (photo.name, photo.license)


def test_attribution_lists_every_photo_and_the_folder_stays_small():
    folder = corpus_dir()
    text = (folder / "ATTRIBUTION.md").read_text(encoding="utf-8")
    photos = corpus_photos()
    assert all(f"| {p.name} |" in text for p in photos)
    assert sum(p.path.stat().st_size for p in photos) < 8e6
    assert is_corpus_folder(folder)


def test_photos_decode_at_their_manifest_size_and_are_not_flat():
    for photo in corpus_photos():
        with Image.open(photo.path) as image:
            assert image.size == photo.size and max(image.size) == 320
            pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
        assert pixels.std() > 8, f"{photo.name} is nearly flat"


def test_groups_are_distinct_scenes_with_no_near_duplicates():
    grouping = corpus_grouping()
    assert len(grouping.groups) >= MIN_PHOTOS
    images = [Image.open(p.path) for p in corpus_photos()]
    assert near_duplicates(images) == set()
    # and the detector does find a twin: a photo and its slightly brighter copy
    twin = Image.fromarray(np.clip(np.asarray(images[0], dtype=np.int16) + 12, 0, 255).astype(np.uint8))
    assert near_duplicates([images[0], images[1], twin]) == {2}


def _rcc(files: dict[str, bytes], compress: set[str]) -> bytes:
    """A version-3 Qt resource blob with one folder holding ``files`` (the layout rcc writes)."""
    names, name_offsets = b"", {}
    for name in ["d", *files]:
        name_offsets[name] = len(names)
        encoded = name.encode("utf-16-be")
        names += struct.pack(">HI", len(name), 0) + encoded
    data, data_offsets = b"", {}
    for name, blob in files.items():
        payload = struct.pack(">I", len(blob)) + zlib.compress(blob) if name in compress else blob
        data_offsets[name] = len(data)
        data += struct.pack(">I", len(payload)) + payload
    entries = [struct.pack(">IHII", 0, 2, 1, 1) + b"\0" * 8,  # root: 1 child at index 1
               struct.pack(">IHII", name_offsets["d"], 2, len(files), 2) + b"\0" * 8]
    for name in files:
        entries.append(struct.pack(">IHHHI", name_offsets[name], 1 if name in compress else 0, 0, 0, data_offsets[name]) + b"\0" * 8)
    tree = b"".join(entries)
    header_size = 24
    return (b"qres" + struct.pack(">IIIII", 3, header_size, header_size + len(tree),
                                  header_size + len(tree) + len(data), 0) + tree + data + names)


def test_read_rcc_reads_plain_and_zlib_entries():
    files = {"a.txt": b"hello", "b.bin": bytes(range(200)) * 5}
    got = read_rcc(_rcc(files, compress={"b.bin"}))
    assert got == {"d/a.txt": b"hello", "d/b.bin": files["b.bin"]}
    with pytest.raises(CorpusBuildError):
        read_rcc(b"nope" + b"\0" * 40)


def test_manifest_credits_follow_the_licence_of_each_source():
    meta = json.loads((corpus_dir() / "corpus.json").read_text(encoding="utf-8"))
    by_source = {p["file"].split("_")[0] for p in meta["photos"]}
    assert by_source == {"gc", "lomiri", "mate", "skimage"}
    assert all(p["license"] == "GPL-2+" for p in meta["photos"] if p["file"].startswith("mate_"))
