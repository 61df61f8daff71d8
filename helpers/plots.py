"""One seaborn theme and the few plot helpers the notebooks share."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
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


def step_on_grid(curve: pd.DataFrame, points: int = 2000) -> pd.DataFrame:
    """A step function for plotting (``ax.step(..., where="post")``): `curve` (its index the
    ascending x at which it jumps, each row the value from there on) read at `points` evenly
    spaced x from its first x to its last, when it has more rows than that. The value at a grid
    point is the function's there, so the drawn steps move by at most one grid interval (1/2000
    of the axis: below a pixel) while the drawing costs `points` segments, not one per jump (a
    Kaplan-Meier curve of 8.4 million customers' times of day has millions of jumps, and
    matplotlib took 11 s to draw them). Shorter curves are returned as they are."""
    if len(curve) <= points:
        return curve
    x = curve.index.to_numpy(dtype=float)
    grid = np.linspace(x[0], x[-1], points)
    rows = np.searchsorted(x, grid, side="right") - 1
    return curve.iloc[rows].set_axis(pd.Index(grid, name=curve.index.name))


def new_axes(
    title: str = "", xlabel: str = "", ylabel: str = "", figsize: tuple[float, float] | None = None
) -> Axes:
    """A fresh figure with one labelled axes."""
    _, ax = plt.subplots(figsize=figsize or FIGSIZE)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax


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
