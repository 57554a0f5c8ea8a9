"""On-device augmentation: colour jitter, flips (images, maps, intrinsics, stereo sign), pyramid."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from pipelines.loader.augment import Augment, AugmentConfig, pixel_intrinsics
from pipelines.loader.batch import Batch
from pipelines.loader.colour import (
    JitterParams,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    color_jitter,
)

H, W = 16, 24


def make_batch(n: int = 4, seed: int = 0, same_frames: bool = False) -> Batch:
    """A uint8 batch with all four frames, seg, depth and a non-centred principal point."""
    g = torch.Generator().manual_seed(seed)

    def image() -> torch.Tensor:
        hwc = torch.randint(0, 256, (n, H, W, 3), dtype=torch.uint8, generator=g)
        return hwc.permute(0, 3, 1, 2)  # CHW view, HWC memory like the loader's

    target = image()
    K = torch.tensor([[20.0, 0, 9.3], [0, 22.0, 7.1], [0, 0, 1]]).expand(n, 3, 3).clone()
    return Batch(
        index=torch.arange(n),
        row=torch.arange(n),
        side=torch.arange(n) % 2,
        target=target,
        K=K,
        baseline=torch.full((n,), 0.54),
        prev=target.clone() if same_frames else image(),
        next=image(),
        stereo=target.clone() if same_frames else image(),
        has_prev=torch.ones(n, dtype=torch.bool),
        has_next=torch.ones(n, dtype=torch.bool),
        seg=torch.randint(0, 21, (n, H, W), dtype=torch.uint8, generator=g),
        depth=torch.rand(n, H, W, generator=g).half() * 10,
    )


def augment(batch: Batch, seed: int = 0, train: bool = True, **config) -> object:
    cfg = AugmentConfig(height=H, width=W, scales=3, **config)
    return Augment(cfg)(batch, torch.Generator().manual_seed(seed), train=train)


# ------------------------------------------------------------------ colour
def test_identity_factors_and_zero_hue() -> None:
    x = torch.rand(3, 3, 8, 10)
    ones = torch.ones(3)
    for fn in (adjust_brightness, adjust_contrast, adjust_saturation):
        torch.testing.assert_close(fn(x, ones), x)
    torch.testing.assert_close(adjust_hue(x, torch.zeros(3)), x, atol=1e-6, rtol=0)


def test_per_sample_factors_match_torchvision() -> None:
    x = torch.rand(3, 3, 8, 10)
    factors = torch.tensor([0.8, 1.0, 1.17])
    shifts = torch.tensor([-0.1, 0.03, 0.45])
    pairs = [
        (adjust_brightness, TF.adjust_brightness, factors),
        (adjust_contrast, TF.adjust_contrast, factors),
        (adjust_saturation, TF.adjust_saturation, factors),
        (adjust_hue, TF.adjust_hue, shifts),
    ]
    for ours, theirs, values in pairs:
        ref = torch.stack([theirs(xi, float(v)) for xi, v in zip(x, values, strict=True)])
        torch.testing.assert_close(ours(x, values), ref, atol=2e-6, rtol=0)


def test_jitter_order_and_apply_flag() -> None:
    x = torch.rand(2, 3, 4, 5)
    params = JitterParams(
        apply=torch.tensor([True, False]),
        order=torch.tensor([[3, 2, 1, 0], [0, 1, 2, 3]]),
        brightness=torch.tensor([1.1, 1.2]),
        contrast=torch.tensor([0.9, 0.8]),
        saturation=torch.tensor([1.2, 0.8]),
        hue=torch.tensor([0.05, 0.1]),
    )
    out = color_jitter(x, params)
    ref = x[:1]
    for op in (TF.adjust_hue, TF.adjust_saturation, TF.adjust_contrast, TF.adjust_brightness):
        factor = {TF.adjust_hue: 0.05, TF.adjust_saturation: 1.2, TF.adjust_contrast: 0.9}
        ref = op(ref, factor.get(op, 1.1))
    torch.testing.assert_close(out[:1], ref, atol=2e-6, rtol=0)
    torch.testing.assert_close(out[1], x[1])


def test_jitter_shared_by_frames_and_differs_between_samples() -> None:
    batch = make_batch(n=4, same_frames=True)
    batch.target[1] = batch.target[0]  # samples 0 and 1 start identical
    batch.prev[1] = batch.prev[0]
    batch.stereo[1] = batch.stereo[0]
    out = augment(batch, jitter_prob=1.0, flip_prob=0.0)
    assert out.jittered.all()
    for s in range(3):
        aug = out.color_aug
        torch.testing.assert_close(aug["prev"][s], aug["target"][s])
        torch.testing.assert_close(aug["stereo"][s], aug["target"][s])
        assert not torch.allclose(aug["target"][s][0], aug["target"][s][1])
        assert not torch.allclose(aug["target"][s], out.color["target"][s])


def test_no_jitter_keeps_plain_images() -> None:
    batch = make_batch()
    out = augment(batch, jitter_prob=0.0, flip_prob=0.0)
    for f in out.frames:
        torch.testing.assert_close(out.color_aug[f][0], out.color[f][0])
        torch.testing.assert_close(out.color[f][0], getattr(batch, f).float() / 255)


# ------------------------------------------------------------------ flips
def test_flip_is_consistent_across_images_maps_and_stereo_sign() -> None:
    batch = make_batch(n=4)
    out = augment(batch, jitter_prob=0.0, flip_prob=1.0)
    assert out.flipped.all()
    for f in ("target", "prev", "next", "stereo"):
        torch.testing.assert_close(out.color[f][0], getattr(batch, f).float().flip(-1) / 255)
    torch.testing.assert_close(out.seg, batch.seg.flip(-1))
    torch.testing.assert_close(out.depth[:, 0], batch.depth.float().flip(-1))
    side = torch.where(batch.side == 0, -1.0, 1.0)
    torch.testing.assert_close(out.side_sign, side)
    torch.testing.assert_close(out.stereo_T[:, 0, 3], -side * 0.1)
    plain = augment(batch, jitter_prob=0.0, flip_prob=0.0)
    torch.testing.assert_close(plain.stereo_T[:, 0, 3], side * 0.1)
    torch.testing.assert_close(plain.seg, batch.seg)


def test_flipped_intrinsics_project_to_the_mirrored_pixel() -> None:
    batch = make_batch(n=2)
    flipped = augment(batch, jitter_prob=0.0, flip_prob=1.0)
    plain = augment(batch, jitter_prob=0.0, flip_prob=0.0)
    point = torch.tensor([0.7, -0.2, 3.0, 1.0])
    mirrored = point * torch.tensor([-1.0, 1, 1, 1])  # a flipped sample shows a mirrored scene
    for s in range(3):
        width = W // 2**s
        u = plain.K[s][0] @ point
        u_flip = flipped.K[s][0] @ mirrored
        torch.testing.assert_close(u_flip[0] / u_flip[2], width - 1 - u[0] / u[2])
        torch.testing.assert_close(u_flip[1] / u_flip[2], u[1] / u[2])
        eye = flipped.K[s] @ flipped.inv_K[s]
        torch.testing.assert_close(eye, torch.eye(4).expand(2, 4, 4), atol=1e-5, rtol=0)


def test_flipped_image_puts_a_dot_at_the_mirrored_pixel() -> None:
    batch = make_batch(n=1)
    batch.target.zero_()
    batch.target[0, :, 5, 3] = 255
    out = augment(batch, jitter_prob=0.0, flip_prob=1.0)
    img = out.color["target"][0][0, 0]
    assert img[5, W - 1 - 3] == 1.0 and img.sum() == 1.0


# ------------------------------------------------------------------ sizes, intrinsics, determinism
def test_pyramid_sizes_and_scaled_intrinsics() -> None:
    batch = make_batch(n=2)
    cfg = AugmentConfig(height=8, width=16, scales=3)
    out = Augment(cfg)(batch, torch.Generator().manual_seed(0), train=False)
    for f in out.frames:
        assert [tuple(x.shape) for x in out.color[f]] == [(2, 3, 8, 16), (2, 3, 4, 8), (2, 3, 2, 4)]
    assert tuple(out.seg.shape) == (2, 8, 16) and tuple(out.depth.shape) == (2, 1, 8, 16)
    k0 = out.K[0][0]
    sx, sy = 16 / W, 8 / H
    torch.testing.assert_close(k0[0, 0], torch.tensor(20.0 * sx))
    torch.testing.assert_close(k0[0, 2], torch.tensor((9.3 + 0.5) * sx - 0.5))
    torch.testing.assert_close(k0[1, 2], torch.tensor((7.1 + 0.5) * sy - 0.5))
    k2 = out.K[2][0]
    torch.testing.assert_close(k2[0, 2], torch.tensor((9.3 + 0.5) * sx / 4 - 0.5))
    assert not out.flipped.any() and not out.jittered.any()


def test_pixel_intrinsics_resize_maps_pixel_centres() -> None:
    # Resizing 24 -> 12 columns: output pixel 0 covers input pixels 0 and 1 (centre 0.5).
    K = torch.tensor([[[10.0, 0, 0.5], [0, 10.0, 0.5], [0, 0, 1]]])
    k = pixel_intrinsics(K, (16, 24), (8, 12), torch.tensor([False]))
    torch.testing.assert_close(k[0, 0, 2], torch.tensor(0.0))
    torch.testing.assert_close(k[0, 0, 0], torch.tensor(5.0))


def test_normalised_intrinsics_mode_matches_monodepth2() -> None:
    norm = ((0.58, 0, 0.5), (0, 1.92, 0.5), (0, 0, 1))
    batch = make_batch(n=2)
    cfg = AugmentConfig(height=192, width=640, scales=4, normalised_K=norm, flip_prob=1.0)
    out = Augment(cfg)(batch, torch.Generator().manual_seed(0))
    k = out.K[0][0]
    torch.testing.assert_close(k[:2, :3], torch.tensor([[371.2, 0, 320], [0, 368.64, 96]]))
    torch.testing.assert_close(out.K[3][1, 0, 0], torch.tensor(0.58 * 80))
    assert out.flipped.all()  # flips leave the centred normalised K unchanged
    assert tuple(out.color["target"][0].shape[-2:]) == (192, 640)


def test_deterministic_given_generator() -> None:
    batch = make_batch(n=8)
    a, b = augment(batch, seed=3), augment(batch, seed=3)
    c = augment(batch, seed=4)
    assert torch.equal(a.flipped, b.flipped) and torch.equal(a.jitter.order, b.jitter.order)
    torch.testing.assert_close(a.color_aug["next"][1], b.color_aug["next"][1])
    assert not (torch.equal(a.flipped, c.flipped) and torch.equal(a.jittered, c.jittered))


def test_bad_config() -> None:
    with pytest.raises(ValueError, match="halve"):
        Augment(AugmentConfig(height=12, width=16, scales=4))


# ------------------------------------------------------------------ ground truth and channel swap
def test_ground_truth_flips_with_its_image() -> None:
    from dataclasses import replace

    g = torch.Generator().manual_seed(5)
    for pad in ((0, 0), (2, 3)):  # dense (NYU labeled) and zero-padded (KITTI) ground truth
        batch = make_batch(n=4)
        gt = torch.rand(4, H + pad[0], W + pad[1], generator=g) * 10
        batch = replace(batch, gt_depth=gt, gt_size=torch.tensor([[H, W]] * 4, dtype=torch.int32))
        flipped = augment(batch, jitter_prob=0.0, flip_prob=1.0)
        plain = augment(batch, jitter_prob=0.0, flip_prob=0.0)
        torch.testing.assert_close(plain.gt[:, 0], gt[:, :H, :W])
        torch.testing.assert_close(flipped.gt[:, 0], gt[:, :H, :W].flip(-1))
        torch.testing.assert_close(flipped.color["target"][0], batch.target.float().flip(-1) / 255)


def test_channel_swap_is_off_by_default_and_draws_nothing() -> None:
    batch = make_batch(n=4)
    gen_a, gen_b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    cfg = AugmentConfig(height=H, width=W, scales=3)
    out = Augment(cfg)(batch, gen_a)
    Augment(AugmentConfig(height=H, width=W, scales=3, channel_swap_prob=0.0))(batch, gen_b)
    assert out.channel_perm is None and cfg.channel_swap_prob == 0.0
    assert torch.equal(gen_a.get_state(), gen_b.get_state())


def test_channel_swap_permutes_network_inputs_of_every_frame_alike() -> None:
    batch = make_batch(n=6)
    plain = augment(batch, seed=1, jitter_prob=0.0, flip_prob=0.5)
    out = augment(batch, seed=1, jitter_prob=0.0, flip_prob=0.5, channel_swap_prob=1.0)
    assert torch.equal(out.flipped, plain.flipped)  # the swap draws come after the flip draws
    assert not (out.channel_perm == torch.arange(3)).all(dim=1).any()  # never the identity
    for f in out.frames:
        for s in range(3):
            torch.testing.assert_close(out.color[f][s], plain.color[f][s])  # losses see plain
            for b in range(6):
                expected = plain.color_aug[f][s][b, out.channel_perm[b]]
                torch.testing.assert_close(out.color_aug[f][s][b], expected)
    held_out = augment(batch, seed=1, train=False, channel_swap_prob=1.0)
    assert (held_out.channel_perm == torch.arange(3)).all()


def test_channel_swap_probability_and_choices() -> None:
    from pipelines.loader.augment import CHANNEL_PERMUTATIONS, draw_channel_permutations

    perms = draw_channel_permutations(4000, 0.25, torch.Generator().manual_seed(0))
    swapped = ~(perms == torch.arange(3)).all(dim=1)
    assert abs(float(swapped.float().mean()) - 0.25) < 0.03
    seen = {tuple(p) for p in perms[swapped].tolist()}
    assert seen == set(CHANNEL_PERMUTATIONS)
    assert all(sorted(p) == [0, 1, 2] for p in perms.tolist())
