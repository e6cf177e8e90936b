"""Warm a loaded decider up: the first sights of a decision's inputs, paid at load.

A lone decision that meets a decline code, a card brand or a table for the first time
fills a memo on the way (the rules' decisions and wordings, the decline table's
classifications, the policy's and the models' kept labels and layouts): ~0.2-0.5 ms
more than a warm call, in 36 of the first 50 calls of a fresh process and in 265 of its
first 2,000 (docs/performance.md, h106). Here, at load:

1. the rules decide every code of the artifact's decline table (its processors', with
   their payment method) and each of its aliases, for every card brand of the API contract, as first failures
   and after one earlier attempt, through the same request tables as the API's (so the
   memos' keys are those a request meets), a few dozen events a call: this fills the
   rules' and the table's memos;
2. a few whole lone decisions (and one small batch) of synthetic requests built from the
   same codes and the artifact's known customers fill everything else a first call
   builds.

Nothing is kept from these decisions but the memos, which give the same answers as the
computations they stand for (``tests/declines/test_declines_fast_paths.py``); the
process's random generator is left as it was. Bounded: at most :data:`RULE_EVENTS_MAX`
rule events (half the rules' memo), :data:`DECISIONS` decisions, and no new step once
:data:`SECONDS_MAX` have passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from training.api.requests import requests_to_tables
from training.api.schemas import RecommendationRequest
from training.api.service import recommend, validate_item
from training.contract.tables import CARD_BRANDS, PAYMENT_METHODS, PROCESSORS
from training.core.randomness import seeded_process_rng
from training.declines.rules import DECISION_MEMO_MAX_ENTRIES, SMALL_INPUT_ROWS, RetryRules
from training.policy.decisions import Decider

RULE_EVENTS_MAX = DECISION_MEMO_MAX_ENTRIES // 2
"""Rule events decided at most (each one memo entry): half the memo, so traffic's own
first sights do not soon find it full (a full memo is emptied)."""
DECISIONS = 8
"""Whole lone decisions of synthetic requests (then one batch of them)."""
SECONDS_MAX = 5.0
"""No new step of the warm-up starts after this long."""
AMOUNT_MINOR = 1000
CURRENCY = "EUR"
"""A valid amount and currency for the synthetic requests (answers thrown away)."""


@dataclass(frozen=True)
class WarmUp:
    """What a warm-up did: rule events decided, whole decisions, seconds."""

    rule_events: int
    decisions: int
    seconds: float


def method_of(processor: str) -> str:
    """The payment method a processor's codes come with: ``<scheme>_debit`` for a debit
    scheme's vocabulary, ``card`` for the others."""
    debit = f"{processor}_debit"
    return debit if debit in PAYMENT_METHODS else "card"


def code_events(rules: RetryRules) -> list[dict[str, Any]]:
    """(processor, payment method, card brand, decline code) of every code of the
    decline table of a processor requests may name, and of each of its aliases (the
    spellings the table reads), each card code once per card brand, in the table's
    order."""
    rows = rules.table.rows
    rows = rows[rows["processor"].isin(PROCESSORS)]
    aliases = rows["aliases"] if "aliases" in rows else pd.Series("", index=rows.index)
    events = []
    for processor, code, also in zip(rows["processor"], rows["code"], aliases, strict=True):
        method = method_of(processor)
        brands = CARD_BRANDS if method == "card" else (None,)
        spellings = [code, *(a.strip() for a in str(also or "").split("|") if a.strip())]
        events += [
            {"processor": processor, "payment_method": method, "card_brand": brand,
             "decline_code": spelled}
            for spelled in spellings
            for brand in brands
        ]  # fmt: skip
    return events


def synthetic_requests(
    events: list[dict[str, Any]],
    customers: pd.DataFrame,
    failed_at: datetime,
    previous: bool = False,
) -> list[dict[str, Any]]:
    """API requests of ``events``, each for a customer of ``customers`` (in turn; the
    customer left out, as a known one may be, every other one); ``previous``: with one
    earlier attempt two days before."""
    ids = customers.index.tolist() or ["warm_up_customer"]
    at = failed_at.isoformat()
    earlier = [{"attempted_at": (failed_at - timedelta(days=2)).isoformat()}] if previous else []
    out = []
    for i, event in enumerate(events):
        request = {
            "invoice_id": f"warm_up_{i}",
            "customer_id": str(ids[i % len(ids)]),
            "amount_minor": AMOUNT_MINOR,
            "currency": CURRENCY,
            "merchant_advice_code": None,
            **event,
            "failed_at": at,
            "previous_attempts": earlier,
        }
        if i % 2 or not len(customers):
            request["customer"] = _customer(customers, i) if len(customers) else _NO_CUSTOMER
        out.append(request)
    return out


_NO_CUSTOMER = {"country": "US", "timezone": "UTC", "signup_at": "2020-01-01T00:00:00Z"}


def _customer(customers: pd.DataFrame, i: int) -> dict[str, Any]:
    """The fields of the artifact's ``i``-th customer (in turn), as a request gives them."""
    row = customers.iloc[i % len(customers)]
    fields = {}
    for name, value in row.items():
        if value is None or (not isinstance(value, str | bool) and pd.isna(value)):
            continue
        if isinstance(value, pd.Timestamp):
            value = value.isoformat()
        elif hasattr(value, "item"):  # a numpy scalar: the Python value JSON would give
            value = value.item()
        fields[str(name)] = value
    return fields


def warm_rules(
    rules: RetryRules,
    requests: list[dict[str, Any]],
    known: Callable[[list[str]], dict[str, dict[str, Any]]],
    deadline: float,
) -> int:
    """Decide the requests' failures with ``rules`` from the request tables the API builds
    (:data:`SMALL_INPUT_ROWS` at a time: the calls the memos answer); the number decided."""
    done = 0
    for start in range(0, len(requests), SMALL_INPUT_ROWS):
        if time.perf_counter() > deadline:
            break
        valid = [validate_item(r, "") for r in requests[start : start + SMALL_INPUT_ROWS]]
        chunk = [r.model_dump() for r in valid if isinstance(r, RecommendationRequest)]
        if not chunk:
            continue
        ids = [str(i) for i in range(len(chunk))]
        events, previous = requests_to_tables(chunk, ids, known([r["customer_id"] for r in chunk]))
        rules.decide_table(events, previous)
        done += len(chunk)
    return done


def classify_lone(rules: RetryRules, events: list[dict[str, Any]]) -> None:
    """Classify each (processor, code) pair of ``events`` and each merchant advice code of
    the table alone, as a lone request's features and rules do (their one-pair memo)."""
    rows = rules.table.rows
    macs = rows.loc[rows["processor"] == "mastercard_mac", "code"].tolist()
    pairs = {(e["processor"], e["decline_code"]): None for e in events}
    pairs.update({("mastercard_mac", code): None for code in macs})
    for processor, code in pairs:
        rules.table.classify_texts([processor], [code])


def warm_up(decider: Decider, customers: pd.DataFrame, now: datetime | None = None) -> WarmUp:
    """Fill ``decider``'s memos (a :class:`~serving.artifact_decider.ArtifactDecider`;
    ``customers``: its known customers, by id) as the first requests would; see the
    module's docstring."""
    start = time.perf_counter()
    deadline = start + SECONDS_MAX
    failed_at = (now or datetime.now(UTC)).replace(microsecond=0)
    rules = getattr(getattr(decider, "decider", decider), "rules", None)
    known: Callable[[list[str]], dict[str, dict[str, Any]]] = getattr(
        decider, "known_customers", lambda ids: {}
    )
    events = code_events(rules) if isinstance(rules, RetryRules) else []
    rule_events = 0
    with seeded_process_rng(0):  # the process's own stream untouched
        if isinstance(rules, RetryRules):
            firsts = synthetic_requests(events, customers, failed_at)
            seconds = synthetic_requests(events, customers, failed_at, previous=True)
            wanted = (firsts + seconds)[:RULE_EVENTS_MAX]
            rule_events = warm_rules(rules, wanted, known, deadline)
            classify_lone(rules, events)
        # whole decisions: the events spread over the table, a known customer each
        step = max(1, len(events) // DECISIONS)
        sample = synthetic_requests(events[::step][:DECISIONS], customers, failed_at)
        decisions = 0
        for request in sample:
            if time.perf_counter() > deadline:
                break
            recommend(decider, [request], known_customers=_known(decider, [request]))
            decisions += 1
        if sample and time.perf_counter() <= deadline:
            recommend(decider, sample, known_customers=_known(decider, sample))
    return WarmUp(rule_events, decisions, time.perf_counter() - start)


def _known(decider: Decider, requests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What the service would look up for requests that leave ``customer`` out."""
    lookup = getattr(decider, "known_customers", None)
    ids = [r["customer_id"] for r in requests if "customer" not in r]
    return lookup(ids) if callable(lookup) and ids else {}
