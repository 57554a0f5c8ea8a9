"""The one weights resolver, shared with the store passes: see :mod:`pipelines.loader.weights`."""

from pipelines.loader.weights import (
    MissingWeightsError,
    Weights,
    WeightsArg,
    cached_weights_path,
    load_state_dict_file,
    load_weights,
    resnet_weights_enum,
    resolve_weights,
    weights_state_dict,
)

__all__ = [
    "MissingWeightsError",
    "Weights",
    "WeightsArg",
    "cached_weights_path",
    "load_state_dict_file",
    "load_weights",
    "resnet_weights_enum",
    "resolve_weights",
    "weights_state_dict",
]
