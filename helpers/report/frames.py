"""Aligning the report's per-customer frames on the customers' ids without hashing them.

The report's tables per customer (the customer summary, the first orders' attributes, the net
revenue...) come from the engine sorted by the customers' ids, in the ids' text order (the codes
of :func:`helpers.report.engine.coded_handover` are numbered in it). Putting one table on
another's ids with ``reindex`` hashes every id: at 8.4 million text ids about 7-9 s each time.
Two sorted, unique indexes line up in one merge instead (about 1 s)."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import pandas as pd

Frame = TypeVar("Frame", pd.Series, pd.DataFrame)


def align(obj: Frame, index: pd.Index) -> Frame:
    """``obj.reindex(index)``: `obj`'s rows at the labels of `index`, missing where it has none
    (the same values, dtypes and index). When both indexes are sorted increasing without
    repeats the positions come from one merge of the two (:func:`_merged_positions`) instead of
    a hash of every label; otherwise ``reindex`` itself."""
    src = obj.index
    pos = _merged_positions(src, index)
    if pos is None:
        return obj.reindex(index)
    if len(pos) and pos.min() >= 0:  # every label found: the rows as they are, by position
        out = obj.iloc[pos]
    else:  # missing labels: reindex by position (pandas' own missing values and dtypes)
        by_position = obj.copy(deep=False)  # the values shared: only the labels change
        by_position.index = pd.RangeIndex(len(src))
        out = by_position.reindex(pos)
    out.index = index  # on the new rows (set_axis copied them once more)
    return out


def positions(index: pd.Index, labels: pd.Index) -> np.ndarray:
    """``index.get_indexer(labels)``: where each of `labels` is in `index` (a unique index), -1
    where it is not; by one merge when both are sorted increasing without repeats
    (:func:`_merged_positions`: a subset of the customers in their order, e.g. an audience
    picked by a mask); else, for as many labels as `index` has or fewer, without repeats and of
    its type, by hashing the labels and looking up each of `index`'s (:func:`_probed_positions`);
    else by hashing `index`."""
    pos = _merged_positions(index, labels)
    if pos is None:
        pos = _probed_positions(index, labels)
    return index.get_indexer(labels) if pos is None else pos


def _probed_positions(index: pd.Index, labels: pd.Index) -> np.ndarray | None:
    """``index.get_indexer(labels)`` for a unique `index` from the other side: a hash table of
    the labels (a new Index of them, freed on return) in which each of `index`'s labels is
    looked up, then each found label given its row. ``index.get_indexer`` would build a table of
    all of `index` and keep it on the index for as long as the index lives: the customer
    summary's, at 8.4M customers about 260 MB for the rest of the report (first asked for by
    an audience of the actions' arithmetic, in no sorted order). None (not done) for labels of
    another type, with repeats, or more than `index`'s."""
    if (
        not len(labels)
        or len(labels) > len(index)
        or labels.dtype != index.dtype
        or labels.dtype != object
    ):
        return None
    probe = pd.Index(labels.to_numpy(), dtype=object, copy=False)  # its own hash table
    if not probe.is_unique:
        return None
    where = probe.get_indexer(index)  # each of index's labels: its place among the labels
    hit = np.flatnonzero(where >= 0)
    out = np.full(len(labels), -1, dtype=np.intp)
    out[where[hit]] = hit
    return out


def _merged_positions(src: pd.Index, index: pd.Index) -> np.ndarray | None:
    """The positions in `src` of the labels of `index` (-1: absent) from one merge of the two
    (:meth:`pandas.Index.join`, compared as Python compares the labels) when both are sorted
    increasing without repeats (checked: the check finds the repeats too); None otherwise."""
    if not (
        len(index)
        and src.is_monotonic_increasing
        and index.is_monotonic_increasing
        and src.is_unique  # after the monotonic check: strictly increasing, no hashing
        and index.is_unique
    ):
        return None
    try:
        _, _, pos = index.join(src, how="left", return_indexers=True)
    except TypeError:  # labels Python cannot order against each other
        return None
    return np.arange(len(index)) if pos is None else np.asarray(pos, dtype=np.intp)
