"""The vendored photo album: exact bytes, upright pixels, licence files, and the project's facts
about scene groups and people."""

import hashlib

import numpy as np
import pytest
from PIL import Image

from styleforge.photo.album import (
    album_dir,
    album_photos,
    group_of,
    manifest,
    people_photos,
    verify_album,
)
from styleforge.runtime.imageio import open_image, to_uint8_array

# Pinned here as well as in album.json: editing a photo and its manifest entry together still fails.
SHA256 = {
    "anne_helene.jpg": "75dea938bf86530e95c6b74dbcc7fb447947fd17d523121634e08f03e0e7304f",
    "bar55.jpg": "dd57f8a93ea84b46d817d3b10d496360b81588da9ea887887d057803cc39c52d",
    "bar55_2.jpg": "e2a3ebc63306abf0a3ae898edd69fbc0a5cef16f28450ceb1d32c67c6f7b662a",
    "blackie.jpg": "5a72fc60a65448e02e8022820ed5bc15d3e9ce4c92d55d51a7d760357cf704e7",
    "cold_water.jpg": "1c92d774263012891803360080a03999ffdb4fb643f320d9c106b5a3cbb21306",
    "donna.jpg": "c98f91990752bb6dff72bd8bb2820dc28317051c0e60ddf11822a39f076c31da",
    "donna_2.jpg": "b476b81f11db406767598266f81cb8623204c8207f297e4abcf2055366794b5f",
    "grand_canyon_1.jpg": "0165dbe62dc0da4dadd875616b75d8ae6145228bcf2cc78f55a139ec4d5a52dc",
    "grand_canyon_2.jpg": "7814adbefb9665f506acf5123981c83bb5b22dde12b10ef57083d328a86cbdb6",
    "grand_canyon_3.jpg": "923ba3a8d16993388f19686d333d70988f7baf4885865af1729f80bbbd02ffe7",
    "jesper.jpg": "5b3b5a6cdf040c238c137fd50d3f4e3aa3f6877b6f031c93ad9b06c45225b7e6",
    "jesper_2.jpg": "e7c5112cad4076c0b16f7a822b0bf559859ad84077705442769afb91c81bcb1b",
    "new_wave_1.jpg": "6069f2cc10b2bd0fac69fe7ffb4ebcf4627a7b86073f9f11a1ecc0f705f09c6b",
    "new_wave_2.jpg": "a262d1ec436c0f41495963cbaaf69cb618da0b56a27fa03c0c1e3206e841a261",
    "pool.jpg": "c6b1c79236388d3a7608ce1b8702a613f3d62105e36dfebc1fce4efe16e42560",
    "pool_2.jpg": "08e19c914dee64ab13f11669b7f11f6a3c4f72e6dfc4101a40b20b60f356a9dd",
    "skagen.jpg": "d7c724e47d68b9f9483b14a9a21235c2ba6c9b3bffd1be49a344391e4c189760",
    "skagen_2.jpg": "17ca43c9fb3b60ad27c63e3a418bff2090999e96bd7a9c7f2c46fb58de899a72",
    "snow.jpg": "7106574608681e7e3387bdc299663cbce521099e9fbff611decf227ee19e7780",
    "spiff.jpg": "4d222fe255566ab7249db968d28aeed2c1ef5508ea79da870d7a5c5cfa290f78",
    "spiff_2.jpg": "9bbab84f204329e1def8c39dda58706aaccb4a913ced00c2593b299a971d2a53",
    "sunset.jpg": "da4a44a03272bbaabc9aa384137f2531fe2a7c0075bc761be001c7b4d2eeb4ee",
    "wayne.jpg": "f714b849431e85ef2dddaf9b12318ee6eaf70565848170bb22bb5e22cae20f12",
}

# Scene groups (a shared album label, or the same place on the same day) and whether each photo
# shows humans: Donna (dog), Spiff (rabbit) and Blackie (eel) are pets, not people.
GROUPS = {
    "bar55": {"bar55.jpg", "bar55_2.jpg"},
    "blackie": {"blackie.jpg"},
    "donna": {"donna.jpg", "donna_2.jpg"},
    "grand_canyon": {"grand_canyon_1.jpg", "grand_canyon_2.jpg", "grand_canyon_3.jpg"},
    "jesper": {"jesper.jpg", "jesper_2.jpg"},
    "new_wave": {"new_wave_1.jpg", "new_wave_2.jpg"},
    "pool": {"pool.jpg", "pool_2.jpg", "wayne.jpg"},
    "skagen": {"skagen.jpg", "skagen_2.jpg", "anne_helene.jpg", "cold_water.jpg"},
    "snow": {"snow.jpg"},
    "spiff": {"spiff.jpg", "spiff_2.jpg"},
    "sunset": {"sunset.jpg"},
}
NO_PEOPLE = {
    "blackie.jpg", "donna.jpg", "donna_2.jpg", "spiff.jpg", "spiff_2.jpg", "grand_canyon_3.jpg",
    "skagen.jpg", "skagen_2.jpg", "snow.jpg", "sunset.jpg",
}
# Stored rotated (clockwise) from the upstream files, which KPhotoAlbum turns upright on display.
ROTATED = {"new_wave_1.jpg": 90, "wayne.jpg": 90, "pool_2.jpg": 270, "grand_canyon_1.jpg": 180}


def test_vendored_bytes_are_pinned():
    files = sorted(p.name for p in album_dir().glob("*.jpg"))
    assert files == sorted(SHA256), "album photos added or removed"
    for name, digest in SHA256.items():
        assert hashlib.sha256((album_dir() / name).read_bytes()).hexdigest() == digest, name
    assert verify_album() == []
    assert {p.name: p.sha256 for p in album_photos()} == SHA256


def test_licence_and_attribution_ship_with_the_photos():
    meta = manifest()
    assert meta["license"] == "CC-BY-SA-4.0" and "Jesper K. Pedersen" in meta["copyright"]
    legal = (album_dir() / meta["license_file"]).read_text()
    assert "Attribution-ShareAlike 4.0 International" in legal and "Section 3" in legal
    credit = (album_dir() / meta["attribution_file"]).read_text()
    assert "© 2003-2007 Jesper K. Pedersen" in credit and "CC-BY-SA-4.0" in credit
    assert "qt-logo.jpg" not in SHA256


def test_photos_are_stored_upright():
    for photo in album_photos():
        with Image.open(photo.path) as img:
            assert img.format == "JPEG" and img.mode == "RGB"
            assert img.getexif().get(0x0112, 1) == 1, f"{photo.name}: EXIF orientation tag"
            assert img.size == photo.size and 400 <= min(img.size) and max(img.size) <= 800
        assert open_image(photo.path).size == photo.size  # no EXIF turn on loading either
        assert photo.rotated_cw == ROTATED.get(photo.name, 0)
    sizes = {p.name: p.size for p in album_photos()}
    for name in ("new_wave_1.jpg", "wayne.jpg", "pool_2.jpg"):  # portrait-format once upright
        assert sizes[name][1] > sizes[name][0], f"{name} is sideways: {sizes[name]}"


@pytest.mark.parametrize("name", ["grand_canyon_1.jpg", "grand_canyon_2.jpg", "cold_water.jpg", "skagen.jpg"])
def test_sky_is_at_the_top(name):
    # grand_canyon_1 is stored upside down upstream; the others are controls for the check.
    rgb = to_uint8_array(open_image(album_dir() / name).rgb).astype(np.float32)
    band = rgb.shape[0] // 5
    top, bottom = rgb[:band], rgb[-band:]
    assert top.mean() > bottom.mean() + 30
    assert (top[..., 2] - top[..., 0]).mean() > (bottom[..., 2] - bottom[..., 0]).mean() + 10  # blue sky


def test_scene_groups_and_people_are_the_projects_facts():
    photos = album_photos()
    assert len(photos) == 23
    by_group: dict = {}
    for photo in photos:
        by_group.setdefault(photo.group, set()).add(photo.name)
        assert group_of(photo.path) == photo.group
    assert by_group == GROUPS
    assert {p.name for p in photos if not p.people} == NO_PEOPLE
    assert {p.name for p in people_photos()} == set(SHA256) - NO_PEOPLE
    assert set(manifest()["groups"]) == set(GROUPS)  # every group has a stated reason
