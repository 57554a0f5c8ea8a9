"""Evaluation: numpy metrics (:mod:`metrics`), protocols and the predictor loop
(:mod:`evaluate`), pictures and colour maps."""
