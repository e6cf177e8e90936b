"""Several boosters fitted with different seeds, averaged into one booster.

One boosting fit is noisy at the sizes billing histories have: another seed (bagging and
feature sampling drawn differently) moves a model's held-out loss by up to 0.0005 and
stops it after 63 rounds instead of 221 (docs/evaluation.md). The searches pick the
candidates the model over-values, so that noise costs decisions. The mean of ``k``
boosters' raw scores (log-odds) is the same as one booster whose trees are all the
members' trees with their leaf values divided by ``k``: merged that way, everything
downstream (calibration, the compiled trees, the artifact) sees one ordinary booster.
"""

from __future__ import annotations

import re

import lightgbm as lgb

_TREE_START = re.compile(r"^Tree=\d+$", re.M)
_END_OF_TREES = "end of trees"


def _split_model(text: str) -> tuple[str, list[str], str]:
    """A LightGBM model text as (header, tree blocks, the rest from "end of trees")."""
    starts = [m.start() for m in _TREE_START.finditer(text)]
    end = text.index(_END_OF_TREES)
    if not starts:
        return text[:end], [], text[end:]
    bounds = [*starts, end]
    blocks = [text[bounds[i] : bounds[i + 1]] for i in range(len(starts))]
    return text[: starts[0]], blocks, text[end:]


def _scaled_block(block: str, number: int, scale: float) -> str:
    """One tree block renumbered ``number`` with its leaf values multiplied by ``scale``."""
    lines = block.split("\n")
    lines[0] = f"Tree={number}"
    for i, line in enumerate(lines):
        if line.startswith("leaf_value="):
            values = (float(v) * scale for v in line[len("leaf_value=") :].split())
            lines[i] = "leaf_value=" + " ".join(repr(v) for v in values)
    return "\n".join(lines)


def merged_booster(members: list[tuple[lgb.Booster, int]]) -> lgb.Booster:
    """One booster whose raw score is the mean of the members' raw scores, each member
    cut at its own number of trees (``(booster, num_iteration)`` pairs; one tree per
    iteration: binary objectives)."""
    if not members:
        raise ValueError("an ensemble needs at least one booster")
    if len(members) == 1:
        booster, rounds = members[0]
        return lgb.Booster(model_str=booster.model_to_string(num_iteration=rounds))
    scale = 1.0 / len(members)
    header = footer = ""
    blocks: list[str] = []
    for booster, rounds in members:
        member_header, member_blocks, member_footer = _split_model(
            booster.model_to_string(num_iteration=rounds)
        )
        if not header:
            header, footer = member_header, member_footer
        blocks.extend(_scaled_block(b, len(blocks) + i, scale) for i, b in enumerate(member_blocks))
    sizes = " ".join(str(len(b)) for b in blocks)
    header = re.sub(r"^tree_sizes=.*$", f"tree_sizes={sizes}", header, count=1, flags=re.M)
    return lgb.Booster(model_str=header + "".join(blocks) + footer)
