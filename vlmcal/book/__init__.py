"""The book's machinery, above the papers: the page runner and the torchrun command line.

- ``run``: executes one page for ``make book``, as ``python -m vlmcal.book.run SRC DEST -p NAME VALUE``;
- ``precompute``: a page's heavy work over the processes of a ``torchrun`` launch, as
  ``torchrun ... -m vlmcal.book.precompute PAGE -p NAME VALUE``.
"""
