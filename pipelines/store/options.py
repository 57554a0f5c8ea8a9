"""Checks of the sizes and counts the data commands take, made before any work.

Each check raises a ValueError whose one line names the option, the value and why it is refused
(``cli.main`` prints it as the ``error:`` line).
"""

from __future__ import annotations

MIN_SIZE = 32  # pixels per side: the depth networks downsample by 32


def parse_size(text: str, option: str = "--size") -> tuple[int, int]:
    """``"192x640"`` (height x width) -> ``(192, 640)``; ValueError for anything else, or for a
    side under :data:`MIN_SIZE` pixels (see :func:`check_size`)."""
    parts = text.lower().replace(" ", "").split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"{option} {text!r} must be HEIGHTxWIDTH, e.g. 192x640") from None
    return check_size((h, w), option)


def check_size(size: tuple[int, int], option: str = "--size") -> tuple[int, int]:
    """``size`` (H, W) itself when both sides are at least :data:`MIN_SIZE` pixels."""
    h, w = (int(v) for v in size)
    if h < MIN_SIZE or w < MIN_SIZE:
        raise ValueError(
            f"{option} {h}x{w}: height and width must be at least {MIN_SIZE} pixels "
            "(the networks downsample by 32)"
        )
    return h, w


def check_count(option: str, value: int | None, minimum: int = 1) -> None:
    """ValueError unless ``value`` is None (the default) or at least ``minimum``."""
    if value is None:
        return
    if value < minimum:
        what = "positive" if minimum == 1 else f"at least {minimum}"
        raise ValueError(f"{option} must be {what} (got {value})")


def check_fraction(option: str, value: float) -> None:
    """ValueError unless ``0 <= value < 1``."""
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{option} must be at least 0 and below 1 (got {value})")
