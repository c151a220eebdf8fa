"""From a model name to cached features and logits (``predictions``, ``runs``, ``features``), and the storage
under it (``sharding``, ``cache``, ``atomic``)."""
