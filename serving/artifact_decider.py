"""A loaded decision artifact as the service uses it: the decider, plus its known customers
and the description ``GET /v1/model`` shows.

The artifact carries the customers of its training history (``artifact.customers``), so
a request may leave ``customer`` out for them (API contract). This adapter answers
``known_customers(ids)``, the optional lookup :func:`training.api.service.customer_knowledge`
asks a decider for, and otherwise delegates to the artifact's own decider. The API and
``smartretry recommend`` both load through :func:`load_artifact_decider`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from training.config.quiet_hours import QuietHours
from training.contract.tables import CUSTOMER_FIELDS
from training.core.columnar import Table
from training.core.localtime import warm_zones
from training.policy.decisions import Decider, Decisions
from training.tracking.loading import load_artifact

DEFAULT_NAME = "smart-retry"
logger = logging.getLogger(__name__)


class ArtifactDecider:
    """:class:`~training.policy.decisions.Decider` of an artifact, with its customers."""

    def __init__(
        self, decider: Decider, customers: pd.DataFrame, metadata: dict[str, Any] | None = None
    ) -> None:
        self.decider = decider
        columns = [c for c in CUSTOMER_FIELDS if c in customers.columns]
        table = customers.drop_duplicates("customer_id", keep="last").set_index("customer_id")
        self._customers = table[columns]
        # each field's values, for known_customers to take the found rows from
        self._fields = {name: table[name].array for name in columns}
        self._metadata = dict(metadata or {})

    @property
    def model_version(self) -> str:
        return self.decider.model_version

    @property
    def fallback(self) -> bool:
        return self.decider.fallback

    @property
    def customers(self) -> pd.DataFrame:
        """The known customers' fields, by ``customer_id``."""
        return self._customers

    @property
    def customer_count(self) -> int:
        return len(self._customers)

    def decide(self, events: Table, previous_attempts: pd.DataFrame) -> Decisions:
        return self.decider.decide(events, previous_attempts)

    def known_customers(self, customer_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Fields of the training history's customers among ``customer_ids`` (others absent),
        as Python values (missing: ``None``), in the history's order.

        The found rows are taken from each field's values: a lone request's lookup cost
        ~1 ms of pandas when the rows were selected as a frame, which made a known
        customer's request one of the server's slowest (docs/performance.md, h104)."""
        positions = self._customers.index.get_indexer(list(dict.fromkeys(customer_ids)))
        rows = np.sort(positions[positions >= 0])  # the history's order, as the frame gave
        if not len(rows):
            return {}
        ids = self._customers.index[rows].tolist()
        names = list(self._fields)
        columns = [_python_values(self._fields[name].take(rows)) for name in names]
        return {
            customer_id: dict(zip(names, values, strict=True))
            for customer_id, *values in zip(ids, *columns, strict=True)
        }

    def describe(self) -> dict[str, Any]:
        """Name, version, training data period and evaluation figures (``GET /v1/model``);
        the artifact's other metadata is kept under its own keys."""
        described = {**self._metadata, **self.decider.describe()}
        described.update(
            name=str(self._metadata.get("name") or DEFAULT_NAME),
            version=self.model_version,
            fallback=self.fallback,
            training_data=self._metadata.get("training_data"),
            evaluation=self._metadata.get("evaluation"),
            known_customers=self.customer_count,
        )
        return described


def _python_values(values: pd.api.extensions.ExtensionArray) -> list[Any]:
    """The values as Python objects (``astype(object)``: ``bool``, ``str``, ``Timestamp``),
    every kind of missing as ``None``."""
    out = np.asarray(values.astype(object), dtype=object)
    out[np.asarray(pd.isna(values), dtype=bool)] = None
    return list(out.tolist())


def load_artifact_decider(
    source: str,
    threads: int = 1,
    quiet_hours: QuietHours | None = None,
    compiled: bool = True,
    warm_up: bool = True,
) -> ArtifactDecider:
    """Load an artifact (local path or MLflow model URI) for serving or batch scoring;
    ``quiet_hours``: the operator's override of the quiet hours the model was trained with;
    ``compiled``: score with the trees compiled to machine code (LightGBM otherwise);
    ``warm_up``: fill the decision memos now (:mod:`serving.warm_up`), not in the first
    requests."""
    artifact = load_artifact(source)
    if quiet_hours is not None:
        artifact.policy = artifact.policy.model_copy(update={"quiet_hours": quiet_hours})
    decider = artifact.decider(threads=threads, compiled=compiled)
    decider.scorer.warm_up()  # now, not in the first request (and frozen with the rest)
    if "timezone" in artifact.customers.columns:  # likewise its customers' zones' offsets
        first, last = decision_years(artifact.metadata)
        warm_zones(artifact.customers["timezone"].unique().tolist(), first, last)
    loaded = ArtifactDecider(decider, artifact.customers, artifact.metadata)
    if warm_up:
        from serving.warm_up import warm_up as fill_memos  # (it imports the API's service)

        try:
            done = fill_memos(loaded, loaded.customers)
        except Exception:  # a warm-up's failure costs the first requests' speed, no more
            logger.warning("warm-up failed; the first requests fill the memos", exc_info=True)
        else:
            logger.info(
                "warm-up: %d rule events, %d decisions in %.2f s",
                done.rule_events,
                done.decisions,
                done.seconds,
            )
    return loaded


def decision_years(metadata: Mapping[str, Any], now: datetime | None = None) -> tuple[int, int]:
    """The years a loaded model's decisions fall in: from its training data's last year
    (replays of the held-out period) or the current year, whichever is earlier, to the
    year after the later one (schedules run past New Year)."""
    this_year = (now or datetime.now(UTC)).year
    data = metadata.get("training_data") or {}
    periods = " ".join(str(v) for k, v in data.items() if k.endswith(("_period", "_start")))
    years = [int(y) for y in re.findall(r"\b(\d{4})-\d{2}-\d{2}", periods)]
    data_year = max(years, default=this_year)
    return min(data_year, this_year), max(data_year, this_year) + 1
