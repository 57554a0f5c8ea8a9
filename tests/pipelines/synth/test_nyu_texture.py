"""The NYU world's texture amount: 1 is the usual world, 0 gives flat walls, floor and ceiling
with textured furniture (the feature-metric benchmark's textureless indoor scenes)."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.synth.nyu import CLASS_IDS, make_room, plan_recording, render_rgb_truth


def test_full_texture_is_the_default_room() -> None:
    a, b = make_room(np.random.default_rng(4)), make_room(np.random.default_rng(4), texture=1.0)
    assert a.planes == b.planes and a.boxes == b.boxes
    np.testing.assert_array_equal(a.textures, b.textures)


def test_no_texture_flattens_the_room_but_not_the_furniture() -> None:
    usual, flat = make_room(np.random.default_rng(4)), make_room(np.random.default_rng(4), 0.0)
    n = len(usual.textures)
    np.testing.assert_array_equal(flat.textures[:n], usual.textures)  # same random draws
    assert flat.boxes == usual.boxes and all(p.texture >= n for p in flat.planes)
    assert np.all(flat.textures[n:] == 0.5)
    half = make_room(np.random.default_rng(4), 0.5)
    np.testing.assert_allclose(half.textures[n:] - 0.5, 0.5 * (usual.textures - 0.5), atol=1e-6)
    with pytest.raises(ValueError, match="texture"):
        make_room(np.random.default_rng(4), 1.5)


def test_flat_walls_render_as_one_colour_each() -> None:
    rec = plan_recording("bedroom_0001", 4, seed=0, texture=0.0)
    rgb, _, label, surface = render_rgb_truth(rec.room, rec.traj, 0.0)
    walls = [s for s in np.unique(surface[label == CLASS_IDS["wall"]]) if s >= 0]
    assert walls
    for s in walls:
        pixels = rgb[surface == s].astype(np.float32)
        assert pixels.std(axis=0).max() < 2.0  # flat colour, up to rounding at edges
    boxes = rgb[surface >= len(rec.room.planes)].astype(np.float32)
    assert boxes.std(axis=0).max() > 5.0  # the furniture keeps its texture
