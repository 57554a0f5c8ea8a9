"""NYU Depth V2 readers and the official toolbox's algorithms, in numpy (no torch)."""

from nyutools import camera

__all__ = ["camera"]
