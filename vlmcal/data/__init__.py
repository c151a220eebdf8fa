"""Data: the data sets (``datasets``), their distribution shifts (``shifts``), and the prompt
templates and class names (``templates``). Also the folder of the papers' figures
(``paper_values.csv``, read by ``vlmcal.paper_values``).
"""
