"""The calendar contrast (``training/artifact/calendar_contrast.py``) measured on the cluster.

In process, ``measure_calendar_contrast`` draws ``train.calendar_contrast.events``
validation-period failure events (``validation_events``) and fits the slopes on their
logged attempts and messages (``fit_calendar_contrast``). Here:

1. the same events are drawn from the parts (``validation_events_on_cluster``: the same
   positions over the parts' events in part order), and each part's invoices, attempts
   and messages of those events are gathered to the client -- the rows the fit reads,
   nothing else (10,000 events by default: a few MB). This is done right after the time
   split, so the validated parts need not stay on the workers for it;
2. once the models are fitted, the client runs ``fit_calendar_contrast`` (the in-process
   code) with the cluster's models and the gathered customer log.

The slopes differ from the in-process ones only by the models (docs/scale.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from training.artifact.calendar_contrast import (
    NO_CONTRAST,
    CalendarContrast,
    fit_calendar_contrast,
)
from training.config.params import Params
from training.contract.history import History
from training.contract.tables import TABLE_NAMES
from training.declines.table import DeclineTable
from training.models.fit import TrainedModels
from training.models.split import TimeSplit
from training.policy.scorer import ModelScorer
from training.scale.models import release
from training.scale.parts import ValidatedPart
from training.scale.shrinkage import validation_events_on_cluster


@dataclass
class ContrastRows:
    """The chosen validation-period events and the logged rows of their invoices."""

    events: pd.DataFrame
    history: History


def _rows_of(part: ValidatedPart, invoices: pd.Index) -> History:
    """The part's customers, invoices, attempts and messages of the ``invoices``."""
    history = part.history
    chosen = history.invoices[history.invoices["invoice_id"].isin(invoices)]
    return History(
        history.customers[history.customers["customer_id"].isin(chosen["customer_id"])],
        chosen,
        history.attempts[history.attempts["invoice_id"].isin(invoices)],
        history.messages[history.messages["invoice_id"].isin(invoices)],
    )


def contrast_rows_on_cluster(
    client: Any, validated: list[Any], split: TimeSplit, params: Params
) -> ContrastRows | None:
    """The events ``measure_calendar_contrast`` draws from the whole history and their
    logged rows, gathered from the ``validated`` parts (in part order, as the whole
    history is read); None when the contrast is not fitted."""
    settings = params.train.calendar_contrast
    if not settings.shift_days or settings.events == 0:
        return None
    events = validation_events_on_cluster(
        client, validated, split, settings.events, params.train.model.seed
    )
    invoices = pd.Index(events["invoice_id"].unique())
    # one task per part with the ids as an argument (passed to ``map`` as a keyword, a
    # pandas object became a task of its own, which the scheduler refused on 2 workers)
    taken = [client.submit(_rows_of, part, invoices) for part in validated]
    parts: list[History] = client.gather(taken)
    release(taken)
    history = History.from_tables(
        {n: pd.concat([p.tables()[n] for p in parts], ignore_index=True) for n in TABLE_NAMES}
    )
    return ContrastRows(events, history)


def contrast_on_client(
    rows: ContrastRows | None,
    models: TrainedModels,
    customer_log: pd.DataFrame,
    params: Params,
    table: DeclineTable,
) -> CalendarContrast:
    """``fit_calendar_contrast`` of the cluster's ``models`` on the gathered ``rows``."""
    if rows is None:
        return NO_CONTRAST
    scorer = ModelScorer(models, customer_log, table, params.retry_rules.update_requests)
    return fit_calendar_contrast(scorer, rows.history, rows.events, params)
