"""vlmcal: calibration of vision-language models, reproduced claim by claim.

Modules (import the one you need; each is self-contained):

- ``vlmcal.theory``: Proposition 3.1 of the DOR paper (confidence grows with logit spread).
- ``vlmcal.dispersion``: text-feature dispersion (ATFD).
- ``vlmcal.paper_values``: the papers' own figures, from one data file with sources.
- ``vlmcal.verdict``: the computed verdict every notebook ends with.
- ``vlmcal.claims``: each claim's test, deciding its verdict and its reason from a page's results.
- ``vlmcal.plotting``: figures (compute first, draw second; every function takes ``ax=None``).
- ``vlmcal.bookrun``: executes a notebook with papermill for the book.
"""

__version__ = "0.1.0"
