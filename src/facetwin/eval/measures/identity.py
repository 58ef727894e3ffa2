"""``identity``: is the swapped face B and no longer A? Distances of dlib's 128-D embeddings to
the mean faces of A and B, and the two-way retrieval they give (docs/metrics.md, Identity)."""

from __future__ import annotations

import logging

import numpy as np

from facetwin.eval import metrics as M
from facetwin.eval.catalog import Figure, at_least
from facetwin.eval.faces import FacePair
from facetwin.eval.measures import Chart, Inputs, Measure, Section, register
from facetwin.extract.identity import distances

log = logging.getLogger(__name__)

_ID = "id_swap_to_a", "id_swap_to_b", "id_swap_to_original", "id_original_to_a", "id_original_to_b"


def _to_refs(p: FacePair, mean_a: np.ndarray | None, mean_b: np.ndarray | None) -> dict[str, float]:
    """One pair's distances: swap and original face to A and to B, swap to its original."""
    d: dict[str, float] = {}
    for tag, emb in (("swap", p.emb_swap if p.found else None), ("original", p.emb_orig)):
        for side, mean in (("a", mean_a), ("b", mean_b)):
            if emb is not None and mean is not None:
                d[f"id_{tag}_to_{side}"] = float(distances(emb, mean[None])[0])
    if p.found and p.emb_swap is not None and p.emb_orig is not None:
        d["id_swap_to_original"] = float(np.linalg.norm(p.emb_swap - p.emb_orig))
    return d


def _warn_if_crossed(share: object, have_b: bool) -> None:
    """The originals look like B: A and B are the wrong way round (a b2a conversion measured as
    a2b, or face sets given crossed), and every identity figure is inverted."""
    if have_b and isinstance(share, float) and share < 0.5:
        log.warning(
            "most original faces are nearer identity B than A (%.0f%% nearer A): is the "
            "direction right (--direction b2a for a b2a conversion)?",
            100 * share,
        )


def identity(inputs: Inputs) -> Section:
    """Identity figures; without A's reference the mean of the original faces stands in."""
    pairs, refs = inputs.pairs, inputs.refs
    mean_a, source_a = refs.mean_a, refs.source_a
    emb_orig = [p.emb_orig for p in pairs if p.emb_orig is not None]
    if mean_a is None and emb_orig:
        mean_a, source_a = np.mean(emb_orig, axis=0).astype(np.float32), "original"
    per = {id(p): _to_refs(p, mean_a, refs.mean_b) for p in pairs}
    s_a, s_b, s_o, o_a, o_b = (
        np.array([per[id(p)].get(k, np.nan) for p in pairs], np.float64) for k in _ID
    )
    to_a, to_b = M.finite_mean(s_a), M.finite_mean(s_b)
    a_to_b = None if mean_a is None or refs.mean_b is None else np.linalg.norm(mean_a - refs.mean_b)
    out: dict[str, object] = {
        "source_a": source_a,
        "source_b": refs.source_b,
        "swap_faces_embedded": int(sum(p.found and p.emb_swap is not None for p in pairs)),
        "original_faces_embedded": len(emb_orig),
        "a_to_b": None if a_to_b is None else float(a_to_b),
        "id_retrieval": M.nearer_share(s_b, s_a),
        "id_retrieval_a": M.nearer_share(s_a, s_b),
        "swap_to_b_mean": to_b,
        "swap_to_a_mean": to_a,
        "nearer_b_by": to_a - to_b,  # NaN (null) when either is unknown
        "swap_to_original_mean": M.finite_mean(s_o),
        "original_id_retrieval_a": M.nearer_share(o_a, o_b),
        "original_to_a_mean": M.finite_mean(o_a),
        "original_to_b_mean": M.finite_mean(o_b),
    }
    _warn_if_crossed(out["original_id_retrieval_a"], refs.mean_b is not None)
    return Section(out, per)


register(Measure(
    "identity", "embedding distances to A and B, ID retrieval", "identity", identity, rank=10,
    needs=frozenset({"embeddings"}), columns=_ID,
    figures=(
        Figure("identity", "id_retrieval", "ID retrieval (nearer B than A)",
               "share of swapped faces; 1 = all B", "{:.0%}", "ID retrieval",
               at_least(0.95), ">= 95%"),
        Figure("identity", "nearer_b_by", "swap nearer B than A by (mean distance)",
               ">= 0.10 is a clear change of identity", "{:+.3f}", "nearer the target by",
               at_least(0.10), ">= 0.10"),
        Figure("identity", "swap_to_b_mean", "distance swap - B",
               "dlib embedding; < 0.6 ~ same person"),
        Figure("identity", "swap_to_a_mean", "distance swap - A", "higher = less of A left"),
        Figure("identity", "swap_to_original_mean", "distance swap - its original face",
               "0 = unchanged"),
        Figure("identity", "original_id_retrieval_a", "originals nearer A than B",
               "sanity check of A/B, ~1"),
    ),
    charts=(
        Chart("Identity distance per frame", "embedding distance",
              {"swap-B": "id_swap_to_b", "swap-A": "id_swap_to_a",
               "original-A": "id_original_to_a"},
              sparse=True),  # embeddings may be computed every few frames only (embed_every)
        Chart("Identity distance (all faces)", "embedding distance",
              {"swap-B": "id_swap_to_b", "swap-A": "id_swap_to_a"}, kind="histogram"),
    ),
))  # fmt: skip
