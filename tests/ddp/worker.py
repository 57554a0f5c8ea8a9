"""Run under ``torchrun --nproc-per-node 2``: a tiny DDP training run or a validation pass.

``worker.py train STORE RUN:EPOCHS[:resume] ...`` trains ``monodepth2-m`` (64x64, batch 2, CPU,
gloo) into each RUN in turn, in one process group that the worker holds (a launch costs three
interpreter start-ups); ``worker.py validate STORE OUT`` writes rank 0's validation of a fresh
model to OUT.
"""

from __future__ import annotations

import json
import sys

import torch

from train.engine.config import apply_overrides
from train.engine.trainer import train
from train.methods import preset

TINY = {"pretrained": False, "height": 64, "width": 64, "batch_size": 2, "workers": 0}
TINY |= {"device": "cpu", "log_every": 1, "val_batches": None, "keep_epochs": 1}


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    mode, store, out = argv[:3]
    if mode == "train":
        torch.distributed.init_process_group("gloo")  # held across the runs: no re-init
        for job in argv[2:]:
            run, epochs, *resume = job.split(":")
            config = apply_overrides(preset("monodepth2-m"), TINY | {"epochs": int(epochs)})
            train(config, store, run, resume=bool(resume), progress=False, echo=lambda _: None)
        torch.distributed.destroy_process_group()
    else:
        from tests.helpers import validation_of_fresh_model

        values = validation_of_fresh_model(store, TINY)
        if torch.distributed.get_rank() == 0:
            with open(out, "w") as f:
                json.dump(values, f)
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
