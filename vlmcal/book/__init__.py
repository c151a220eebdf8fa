"""The book's machinery, above the papers: the page runner (``run``) and the torchrun command line (``precompute``)."""
