# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Every verdict in one table
#
# ```{admonition} Backbone
# :class: note
# Each row names the models behind its measurement. Rows measured on vlmcal's offline
# stand-in VLMs are the stand-ins' figures, not CLIP's.
# ```
#
# ## Overview
# Each claim page ends with a verdict computed in code and recorded as it runs. This page
# collects them:
#
# 1. Read every recorded verdict.
# 2. Show them in one table: the claim, the paper's figure, the figure here, the models used,
#    and whether the claim holds here.
#
# ## Prerequisites
# None; it reads what the other pages recorded during `make book` (runs in a second).

# %% tags=["parameters"]
verdict_dir = ""  # where the verdicts were recorded; "" = $VLMCAL_VERDICT_DIR (set by `make book`)

# %% [markdown]
# ## Imports

# %%
import os

import pandas as pd
from IPython.display import Markdown, display

from vlmcal.verdict import VERDICT_DIR_ENV, load_verdicts

directory = verdict_dir or os.environ.get(VERDICT_DIR_ENV, "")
if not directory or not os.path.isdir(directory):
    raise FileNotFoundError(
        f"No verdict directory: got verdict_dir={verdict_dir!r} and ${VERDICT_DIR_ENV}={os.environ.get(VERDICT_DIR_ENV)!r}. "
        "Build the book with `make book`, or pass -p verdict_dir <folder of the claims' .json verdicts>."
    )

# %% [markdown]
# ## 1. The verdicts

# %%
table = load_verdicts(directory)
counts = table["verdict"].value_counts()
display(Markdown(", ".join(f"**{n}** {outcome}" for outcome, n in counts.items()) + f" — {len(table)} claims reproduced so far."))
with pd.option_context("display.max_colwidth", None):
    display(table.style.set_properties(**{"text-align": "left", "white-space": "normal"}))

# %% [markdown]
# ## Summary
# A claim that "does not hold here" is a finding about the models and data used here, not a
# refutation of the paper: each page says what differs from the paper's setting. Claims not
# in the table are not reproduced yet (see the [introduction](../intro.md)).
#
# ## References
# The papers are listed in the [introduction](../intro.md).
