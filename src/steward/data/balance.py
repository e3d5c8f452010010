"""Balance and bias: label/group distributions, term–label associations, sample weights, resampling."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from steward.data.config import BalanceConfig
from steward.data.lexicon import IDENTITY_TERMS


def distribution(values: pd.Series) -> dict[str, Any]:
    counts = values.value_counts()
    total = int(counts.sum())
    return {
        "counts": {str(k): int(v) for k, v in counts.items()},
        "shares": {str(k): round(v / total, 4) for k, v in counts.items()} if total else {},
        "imbalance_ratio": round(float(counts.max() / counts.min()), 3) if len(counts) else None,
    }


def crosstab(frame: pd.DataFrame, group: str) -> dict[str, dict[str, int]]:
    tab = pd.crosstab(frame["label"], frame[group])
    return {str(lbl): {str(g): int(n) for g, n in row.items()} for lbl, row in tab.iterrows()}


def term_associations(texts: pd.Series, labels: pd.Series, cfg: BalanceConfig) -> list[dict[str, Any]]:
    """Identity terms over-represented in one label: chi-square (2x2, term present x label) and PMI.

    A term that co-occurs with one label far more than chance is a shortcut a model will learn.
    """
    from scipy.stats import chi2_contingency
    from sklearn.feature_extraction.text import CountVectorizer

    lexicon = cfg.identity_terms if cfg.identity_terms is not None else IDENTITY_TERMS
    term_group = {t.lower(): g for g, terms in lexicon.items() for t in terms}
    if not term_group or texts.empty:
        return []
    vec = CountVectorizer(vocabulary=sorted(term_group), binary=True, lowercase=True,
                          ngram_range=(1, max(len(t.split()) for t in term_group)), token_pattern=r"(?u)\b[\w-]+\b")
    present = vec.transform(texts.tolist()).tocsc()
    n = len(texts)
    label_arr = labels.to_numpy()
    uniq = sorted(set(label_arr.tolist()))
    label_masks = {lbl: label_arr == lbl for lbl in uniq}
    out = []
    for j, term in enumerate(vec.get_feature_names_out()):
        rows = present[:, j].nonzero()[0]
        n_term = len(rows)
        if n_term < cfg.association_min_count:
            continue
        for lbl in uniq:
            mask = label_masks[lbl]
            a = int(mask[rows].sum())  # term & label
            n_label = int(mask.sum())
            table = np.array([[a, n_term - a], [n_label - a, n - n_term - n_label + a]])
            # A term in every row, or a label on every row, carries no association (and χ² is undefined).
            if a == 0 or n_term == n or n_label == n:
                continue
            chi2, p, _, _ = chi2_contingency(table, correction=True)
            pmi = math.log2((a / n) / ((n_term / n) * (n_label / n)))
            if p < cfg.association_p and pmi > 0.5:
                out.append({"term": term, "group": term_group[term], "label": lbl, "rows_with_term": n_term,
                            "rows_with_term_and_label": a, "p_label_given_term": round(a / n_term, 4),
                            "p_label": round(n_label / n, 4), "pmi": round(pmi, 3), "chi2": round(float(chi2), 2),
                            "p_value": float(f"{p:.3g}")})
    return sorted(out, key=lambda r: -r["chi2"])


def sample_weights(frame: pd.DataFrame, group_columns: list[str], cfg: BalanceConfig) -> np.ndarray:
    """Inverse frequency of each row's cell (label, or label x groups), clipped at ``max_weight``, then
    scaled to mean 1 so the loss keeps its scale. Balanced cells get weight 1 before scaling."""
    if cfg.weighting == "none" or frame.empty:
        return np.ones(len(frame))
    keys = ["label"] + (group_columns if cfg.weighting == "label_group" else [])
    sizes = frame.groupby(keys, observed=True)["row_id"].transform("size").to_numpy(dtype=float)
    n_cells = frame.groupby(keys, observed=True).ngroups
    w = len(frame) / (n_cells * sizes)
    w = np.minimum(w, cfg.max_weight)
    return w / w.mean()


def resample(train: pd.DataFrame, how: str, seed: int) -> pd.DataFrame:
    """Over- or under-sample the train split to equal label counts (never validation or test)."""
    if how == "none" or train.empty:
        return train
    counts = train["label"].value_counts()
    target = int(counts.max() if how == "oversample" else counts.min())
    parts = []
    for i, (_lbl, part) in enumerate(train.groupby("label", sort=True)):
        replace = how == "oversample" and len(part) < target
        parts.append(part.sample(n=target, replace=replace, random_state=seed + i) if len(part) != target else part)
    return pd.concat(parts).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def report(frame: pd.DataFrame, group_columns: list[str], cfg: BalanceConfig, task: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if task == "ner":
        tags = pd.Series([t for tags in frame["tags"] for t in tags if t != "O"])
        out["entity_types"] = distribution(tags.str.split("-", n=1).str[1]) if not tags.empty else {}
    elif task == "chat":
        out["turns"] = distribution(pd.Series([len(m) for m in frame["messages"]]).astype(str) + " turns")
    else:
        out["labels"] = distribution(frame["label"])
    out["groups"] = {}
    for g in group_columns:
        dist = distribution(frame[g])
        dist["too_small_to_judge"] = sorted(k for k, v in dist["counts"].items() if v < cfg.min_group_size)
        if task == "classification":
            dist["label_by_group"] = crosstab(frame, g)
        out["groups"][g] = dist
    out["term_label_associations"] = (term_associations(frame["text"], frame["label"], cfg)
                                      if task == "classification" else [])
    return out
