"""What the three papers' packages share.

- ``paper_values``: the papers' figures, thresholds and claim statements, from ``paper_values.csv``;
- ``verdict``: the computed verdict every page ends with, and the summary that collects them;
- ``rules``: how a claim's tests against the paper's bar are made and combined;
- ``page_note``: the Backbone box every page shows;
- ``params``, ``settings``: page parameters as readers type them, checked once;
- ``figures``: the figures (compute first, draw second; every function takes ``ax=None``).
"""
