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
