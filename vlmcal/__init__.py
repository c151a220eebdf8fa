"""vlmcal: calibration of vision-language models, reproduced claim by claim.

The layers, from data to verdicts (each imports only those above it; the model layer never
imports the evaluation layer, ``tests/backbones/test_layering.py`` checks it):

- ``vlmcal.data``: data sets, distribution shifts, prompt templates and class names.
- ``vlmcal.backbones``: models by name (``load_backbone``): open_clip models and the offline
  stand-ins (``backbones.standins``), behind one ``Backbone`` interface.
- ``vlmcal.prompting``: class text features and zero-shot logits, learnable prompt context,
  text-feature dispersion.
- ``vlmcal.features``, ``vlmcal.cache``: cached feature and logit extraction, atomic writes
  with digests.
- ``vlmcal.metrics``: calibration metrics on one binning core, smooth ECE, bootstrap.
- ``vlmcal.calibration``: temperature, vector and histogram calibrators, stratified sampling.
- ``vlmcal.cards``: a stand-in's model card, measured from outside the model code.
- ``vlmcal.study``: the ES study: page settings, predictions, runs, tables and intervals.
- ``vlmcal.theory``: Proposition 3.1 of the DOR paper (confidence grows with logit spread).
- ``vlmcal.paper_values``: the papers' figures, thresholds and claim statements, from one data file.
- ``vlmcal.claims``: each claim's test, deciding its verdict and its reason from a page's results.
- ``vlmcal.verdict``: the computed verdict every notebook ends with.
- ``vlmcal.plotting``: figures (compute first, draw second; every function takes ``ax=None``).
- ``vlmcal.params``, ``vlmcal.bookrun``: notebook parameters as readers type them; the book's runner.

Test-time prompt tuning (TPT, C-TPT) and prompt learning (CoOp, KgCoOp, DOR) will live in
``vlmcal.adaptation``.
"""

__version__ = "0.1.0"
