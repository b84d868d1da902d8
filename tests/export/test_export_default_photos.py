"""Export's default photos: the shipped album, calibration and held-out disjoint by scene group."""

from styleforge.export import calibration as cal
from styleforge.photo.album import album_paths, group_of


def test_default_photos_are_the_album():
    assert cal.default_photos() == album_paths() and len(album_paths()) == 23


def test_calibration_and_heldout_share_no_scene_group():
    calibration, heldout = cal.split_default_photos()
    assert sorted(calibration + heldout) == album_paths()
    assert len(heldout) >= 4 and len(calibration) >= 12
    assert not {group_of(p) for p in calibration} & {group_of(p) for p in heldout}
    assert cal.split_default_photos() == (calibration, heldout)  # fixed, not random per call
