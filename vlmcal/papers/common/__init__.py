"""What the three papers' packages share: the papers' figures (``paper_values``), verdicts (``verdict``) and their
rules (``rules``), the Backbone box (``page_note``), page parameters (``params``, ``settings``) and ``figures``."""
