"""Data: the data sets (``datasets``), distribution shifts (``shifts``), prompt templates and class names
(``templates``)."""
