"""Data: the data sets (``datasets``), their distribution shifts and the shifts' families
(``shifts``), the prompt templates and class names (``templates``), and the stand-ins'
pretraining corpus of captioned scenes (``corpus``). Also the folder of the papers' figures
(``paper_values.csv``, read by ``vlmcal.papers.common.paper_values``).
"""
