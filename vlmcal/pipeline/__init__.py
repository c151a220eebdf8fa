"""From a model name to cached features and logits, and the storage under it.

- ``predictions``: a named model's logits on a named data set and condition (:func:`predictions.predict`),
  with the model loaded once per process;
- ``runs``: ``Run``, one model's logits on one condition, and the calibration/evaluation split;
- ``features``: image features and classifier logits computed in batches and cached;
- ``sharding``: the same work split over the processes of a ``torchrun`` launch, one cache entry per shard;
- ``cache``: where results live, entries with digests, and the one memo (:func:`cache.cached`);
- ``atomic``: atomic writes, and the sweep of what killed writers left behind.
"""
