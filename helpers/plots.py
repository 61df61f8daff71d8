"""One seaborn theme and the few plot helpers the notebooks share."""

from __future__ import annotations

import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.ticker import PercentFormatter

PALETTE = "colorblind"
FIGSIZE = (8, 4)


def set_theme() -> None:
    """The project's plot style: seaborn whitegrid, colour-blind palette, compact figures."""
    sns.set_theme(
        style="whitegrid",
        palette=PALETTE,
        rc={"figure.figsize": FIGSIZE, "figure.dpi": 80, "axes.titleweight": "bold"},
    )


def percent_axis(ax: Axes, axis: str = "y", xmax: float = 1.0, decimals: int = 0) -> Axes:
    """Format an axis holding shares (0-1) as percentages."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(PercentFormatter(xmax=xmax, decimals=decimals))
    return ax


def new_axes(
    title: str = "", xlabel: str = "", ylabel: str = "", figsize: tuple[float, float] | None = None
) -> Axes:
    """A fresh figure with one labelled axes."""
    _, ax = plt.subplots(figsize=figsize or FIGSIZE)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax


import pandas as pd  # noqa: E402  (used by the cohort helpers below)


def cohort_heatmap(
    matrix: pd.DataFrame,
    ax: Axes | None = None,
    title: str = "",
    fmt: str = ".0%",
    max_age: int | None = None,
    cmap: str = "YlGnBu",
    annot_size: float = 7,
) -> Axes:
    """Heatmap of a cohort x age table (helpers.cohorts): cells labelled with `fmt` (".0%" for
    shares, ".0f" for EUR), censored (NaN) cells left blank, cohorts as row labels."""
    m = matrix if max_age is None else matrix.loc[:, :max_age]
    if ax is None:
        _, ax = plt.subplots(
            figsize=(min(1.0 + 0.42 * m.shape[1], 16), min(1.0 + 0.3 * m.shape[0], 12))
        )
    sns.heatmap(
        m, mask=m.isna(), annot=True, fmt=fmt, cmap=cmap, cbar=False, ax=ax,
        annot_kws={"size": annot_size}, linewidths=0.3, linecolor="white",
        yticklabels=[str(i) for i in m.index],
    )  # fmt: skip
    ax.set(
        title=title,
        xlabel=f"{m.columns.name or 'age'} (periods since the first order)",
        ylabel="cohort",
    )
    ax.tick_params(axis="both", labelsize=8)
    ax.grid(False)  # blank (censored) cells stay blank
    return ax
