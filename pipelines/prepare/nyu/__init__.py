"""``prepare-nyu``: raw and labeled plans (:mod:`.plan`, :mod:`.labeled_plan`), per-block pixel
work (:mod:`.blocks`), store attributes (:mod:`.attrs`), driver (:mod:`.prepare`)."""

from __future__ import annotations

from pipelines.prepare.nyu.prepare import NyuPrepareOptions, PrepareReport, prepare_nyu

__all__ = ["NyuPrepareOptions", "PrepareReport", "prepare_nyu"]
