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
# Each claim's record below the table names the models behind its measurement. Figures
# measured on vlmcal's offline stand-in VLMs are the stand-ins' figures, not CLIP's.
# ```
#
# ## Overview
# Each claim page ends with a verdict computed in code and recorded as it runs. This page
# collects them:
#
# 1. Read every recorded verdict and show them in one table: the claim, its paper, whether it
#    holds here, the paper's figure and the figure here, each in short.
# 2. Give each claim's record in full: what was measured, its interval, the models behind it,
#    and what differs from the paper. A claim in the table links to its record.
# 3. When given another build's verdicts (`compare_dir`), set each claim's outcome beside its
#    outcome there.
#
# ## Prerequisites
# None; it reads what the other pages recorded during `make book` (runs in a second).

# %% tags=["parameters"]
verdict_dir = ""  # where the verdicts were recorded; empty: $VLMCAL_VERDICT_DIR (set by `make book`)
compare_dir = ""  # another build's verdicts to compare with (a profile's book sets the default book's); "" for none

# %% [markdown]
# ## Imports

# %%
import os

from IPython.display import Markdown, display

from vlmcal.papers.common.verdict import (
    VERDICT_DIR_ENV, compare_verdicts, read_verdicts, summary_table, verdict_details, verdict_tally,
)
from vlmcal.papers.common.params import check_injected_parameters

check_injected_parameters(page="claims_summary")  # plain papermill only warns about an unknown -p name

directory = verdict_dir or os.environ.get(VERDICT_DIR_ENV, "")
if not directory or not os.path.isdir(directory):
    raise FileNotFoundError(
        f"No verdict directory: got verdict_dir={verdict_dir!r} and ${VERDICT_DIR_ENV}={os.environ.get(VERDICT_DIR_ENV)!r}. "
        "Build the book with `make book`, or pass -p verdict_dir <folder of the claims' .json verdicts>."
    )

# %% [markdown]
# ## 1. The verdicts
# A claim's figures are shortened here; click the claim for its full record.

# %% tags=["full-width"]
verdicts = read_verdicts(directory)
display(Markdown(verdict_tally(verdicts)))
display(Markdown(summary_table(verdicts)))

# %% [markdown]
# ## 2. Each claim's record

# %%
display(Markdown(verdict_details(verdicts)))

# %% [markdown]
# ## 3. Compared with another build
# Shown when the page was given `compare_dir`: a book built with a profile
# (`python -m vlmcal.book.run --profile FILE --out DIR`) compares its verdicts with the default book's.

# %%
if not compare_dir:
    display(Markdown("*No other build to compare with (`compare_dir` is empty).*"))
elif not os.path.isdir(compare_dir) or not read_verdicts(compare_dir):
    display(Markdown(f"*No verdicts to compare with in `{compare_dir}`: build the default book first (`make book`).*"))
else:
    display(Markdown(compare_verdicts(verdicts, read_verdicts(compare_dir))))

# %% [markdown]
# ## Summary
# A claim that "does not hold here" is a finding about the models and data used here, not a
# refutation of the paper: each page says what differs from the paper's setting. Claims not
# in the table are not reproduced yet (see the [introduction](../intro.md)).
#
# ## References
# The papers are listed in the [introduction](../intro.md).
