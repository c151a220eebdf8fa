"""Sharded feature extraction and TPT on tiny models, for tests/pipeline/test_sharding.py.

Run as one process (``python sharded_job.py OUT CACHE``) or under torchrun
(``torchrun --standalone --nproc_per_node 2 sharded_job.py OUT CACHE``): the same code either
way. Rank 0 saves every result to OUT. With ``VLMCAL_TEST_DIE_RANK=r``, rank r waits until the
other ranks' feature shards are cached and then dies, as a killed process would.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

from vlmcal.adaptation import TPTSettings
from vlmcal import standins
from vlmcal.backbones.openclip import load_openclip
from vlmcal.standins.corpus import CorpusConfig
from vlmcal.data.datasets import load_fashion_mnist
from vlmcal.pipeline.sharding import launch
from vlmcal.pipeline.features import image_features
from vlmcal.pipeline.predictions import _AsPIL, RowSubset
from vlmcal.papers.ctpt.tpt_runs import predict_tpt

TINY = "openclip:vlmcal-tiny:random"
STANDIN = standins.StandInConfig(widths=(4, 8, 8), epochs=1, batch_size=64, warmup_steps=2, corpus=CorpusConfig(n_scenes=384))
N_IMAGES, BATCH, SHARD_BATCHES = 48, 8, 2  # 3 shards of 16 images


def main(out: Path, cache: Path) -> None:
    here = launch()
    data = RowSubset(load_fashion_mnist("test"), torch.arange(N_IMAGES))
    identity = {"dataset": "fashion-mnist", "split": "test", "rows": "first 48"}
    die = os.environ.get("VLMCAL_TEST_DIE_RANK")
    if die is not None and int(die) == here.rank:
        # Die once the other rank has cached its two shards of the first extraction.
        while len(list((cache / "features" / "shards").glob("*-of00003.pt"))) < 2:
            time.sleep(0.2)
        os._exit(3)
    openclip = load_openclip(TINY, device="cpu")
    results = {
        "openclip_features": image_features(openclip, _AsPIL(data), identity, batch_size=BATCH, shard_batches=SHARD_BATCHES,
                                            num_workers=0, cache_dir=cache, progress=False).features,
    }
    standin = standins.load_default("tiny", device="cpu", cache_dir=cache, progress=False, config=STANDIN)
    results["standin_features"] = image_features(standin, data, identity, batch_size=BATCH, shard_batches=SHARD_BATCHES,
                                                 cache_dir=cache, progress=False).features
    run = predict_tpt(TINY, settings=TPTSettings(n_views=8, selection=0.25), rows=torch.arange(12), batch_size=2, shard_batches=2,
                      device="cpu", cache_dir=cache, progress=False)
    results.update(tpt_logits=run.logits, tpt_initial_logits=run.initial_logits, tpt_dispersion=run.dispersion, tpt_labels=run.labels)
    if here.rank == 0:
        torch.save(results, out)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
