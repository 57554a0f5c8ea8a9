"""Building blocks of the Lite-Mono encoder (modern_methods.md 1.2).

* :class:`Conv`: convolution without bias, optionally followed by BatchNorm + exact GELU.
* :class:`DilatedConvBlock` (Lite-Mono's CDC block): depthwise dilated 3x3 conv, BatchNorm, a
  pointwise MLP (x6) with layer scale, drop path, residual.
* :class:`LGFIBlock`: optional positional encoding, cross-covariance attention (:class:`XCA`)
  with layer scale, then the pointwise MLP on the attention output; the residual adds to the
  block's input.
* :class:`PositionalEncoding`: XCiT's Fourier features of the pixel grid, projected to C.
* :class:`DropPath`: stochastic depth per sample (timm's ``DropPath`` with ``scale_by_keep``;
  written here to avoid a dependency for ten lines, drawing from the global torch generator
  exactly as timm does, so a seeded forward gives the reference's drops).

Attribute names are the reference's, so the reference's state dicts load without renaming.
Tensors are ``(N, C, H, W)`` unless stated; tokens ``(N, H * W, C)`` in row-major pixel order.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MLP_EXPANSION = 6
LAYER_NORM_EPS = 1e-6


class DropPath(nn.Module):
    """In training, zero each sample's input with probability ``drop_prob`` and scale kept
    samples by ``1 / (1 - drop_prob)``; identity in eval mode or for ``drop_prob == 0``.

    One ``bernoulli_`` draw of shape ``(N, 1, 1, 1)`` per call from the global generator (the
    same draw as timm's ``drop_path``)."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = float(drop_prob)

    def forward(self, x: Tensor) -> Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob:.4f}"


class BNGELU(nn.Module):
    """BatchNorm2d (eps 1e-5) then exact (erf) GELU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=1e-5)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(x))


class Conv(nn.Module):
    """``nn.Conv2d`` without bias (attribute ``conv``), followed by :class:`BNGELU`
    (attribute ``bn_gelu``) when ``bn_act``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        bn_act: bool = False,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias=False
        )
        self.bn_gelu = BNGELU(out_channels) if bn_act else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        return x if self.bn_gelu is None else self.bn_gelu(x)


def _mlp(block: DilatedConvBlock | LGFIBlock, x: Tensor) -> Tensor:
    """``gamma * pwconv2(GELU(pwconv1(x)))`` on channels-last ``x`` ``(..., C)``."""
    return block.gamma * block.pwconv2(block.act(block.pwconv1(x)))


class DilatedConvBlock(nn.Module):
    """Lite-Mono's consecutive dilated convolution block (LM ``DilatedConv``).

    ``x + drop_path(gamma * MLP(BN(dwconv_d(x))))`` with the MLP on channels last. The
    LayerNorm ``norm`` exists in the reference but its forward never uses it: it is kept (frozen,
    ``requires_grad=False``) so the reference's state dicts load and the parameter counts match.
    """

    def __init__(
        self,
        dim: int,
        dilation: int = 1,
        drop_path: float = 0.0,
        layer_scale_init: float = 1e-6,
        expansion: int = MLP_EXPANSION,
    ) -> None:
        super().__init__()
        self.gamma = nn.Parameter(layer_scale_init * torch.ones(dim))
        self.ddwconv = Conv(dim, dim, 3, 1, padding=dilation, dilation=dilation, groups=dim)
        self.bn1 = nn.BatchNorm2d(dim)
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.norm.requires_grad_(False)  # unused by the reference's forward
        self.pwconv1 = nn.Linear(dim, expansion * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(expansion * dim, dim)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn1(self.ddwconv(x)).permute(0, 2, 3, 1)
        return x + self.drop_path(_mlp(self, y).permute(0, 3, 1, 2))


class PositionalEncoding(nn.Module):
    """Fourier positional encoding of an ``H x W`` grid (XCiT's, LM ``PositionalEncodingFourier``).

    Per axis, position ``p = index + 1`` normalised to ``p / (n + 1e-6) * 2 pi``; 32 channels
    ``sin(a / f_0), cos(a / f_1), sin(a / f_2), ...`` with ``f_i = 10000 ** (2 floor(i / 2) / 32)``;
    channels ``[y (32), x (32)]``, then a 1x1 conv 64 -> ``dim`` with bias
    (``token_projection``). Computed in float32 as the reference does.
    """

    def __init__(self, dim: int, hidden_dim: int = 32, temperature: float = 10000.0) -> None:
        super().__init__()
        self.token_projection = nn.Conv2d(hidden_dim * 2, dim, kernel_size=1)
        self.hidden_dim = hidden_dim
        self.temperature = temperature

    def forward(self, height: int, width: int) -> Tensor:
        """``(1, dim, height, width)`` encoding (the same for every sample)."""
        device = self.token_projection.weight.device
        ones = torch.ones(1, height, width, dtype=torch.float32, device=device)
        y = ones.cumsum(1)
        x = ones.cumsum(2)
        eps, scale = 1e-6, 2 * math.pi
        y = y / (y[:, -1:, :] + eps) * scale
        x = x / (x[:, :, -1:] + eps) * scale
        dim_t = torch.arange(self.hidden_dim, dtype=torch.float32, device=device)
        dim_t = self.temperature ** (
            2 * torch.div(dim_t, 2, rounding_mode="floor") / self.hidden_dim
        )
        pos_x = x[..., None] / dim_t
        pos_y = y[..., None] / dim_t
        pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=4).flatten(3)
        pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=4).flatten(3)
        pos = torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)
        return self.token_projection(pos.to(self.token_projection.weight.dtype))


class XCA(nn.Module):
    """Cross-covariance attention (LM ``XCA``): attention between channels, not tokens.

    Tokens ``(N, T, C)``, ``heads`` heads of ``d = C / heads`` channels. q, k, v from one
    ``Linear(C, 3C)`` (output channel ``s * C + head * d + j``); q and k L2-normalised along the
    token axis; per head the ``d x d`` matrix ``softmax((q @ k^T) * temperature[head])``
    multiplies v; then ``Linear(C, C)``.
    """

    def __init__(self, dim: int, heads: int = 8) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"XCA: {dim} channels do not split into {heads} heads")
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, tokens: Tensor) -> Tensor:
        n, t, c = tokens.shape
        qkv = self.qkv(tokens).reshape(n, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 4, 1)
        q, k, v = qkv.unbind(0)  # (N, heads, d, T)
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = ((q @ k.transpose(-2, -1)) * self.temperature).softmax(dim=-1)
        out = (attn @ v).permute(0, 3, 1, 2).reshape(n, t, c)
        return self.proj(out)


class LGFIBlock(nn.Module):
    """Local-global features interaction block (LM ``LGFI``), see the module docstring.

    ``t = tokens(x) [+ P]``; ``t = t + gamma_xca * XCA(LN(t))``;
    ``out = x + drop_path(gamma * MLP(LN(t)))``.
    """

    def __init__(
        self,
        dim: int,
        drop_path: float = 0.0,
        layer_scale_init: float = 1e-6,
        expansion: int = MLP_EXPANSION,
        use_pos_emb: bool = False,
        heads: int = 8,
    ) -> None:
        super().__init__()
        self.gamma_xca = nn.Parameter(layer_scale_init * torch.ones(dim))
        self.gamma = nn.Parameter(layer_scale_init * torch.ones(dim))
        self.pos_embd = PositionalEncoding(dim) if use_pos_emb else None
        self.norm_xca = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.xca = XCA(dim, heads)
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.pwconv1 = nn.Linear(dim, expansion * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(expansion * dim, dim)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        t = x.reshape(n, c, h * w).permute(0, 2, 1)
        if self.pos_embd is not None:
            t = t + self.pos_embd(h, w).reshape(1, c, h * w).permute(0, 2, 1)
        t = t + self.gamma_xca * self.xca(self.norm_xca(t))
        u = _mlp(self, self.norm(t.reshape(n, h, w, c)))
        return x + self.drop_path(u.permute(0, 3, 1, 2))
