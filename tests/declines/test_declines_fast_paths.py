"""Short inputs take memo paths (classify, decision texts): they must equal the vectorized ones."""

import pickle

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from training.declines import rules as rules_module
from training.declines import table as table_module
from training.declines.rules import RetryLimits, RetryRules, to_utc
from training.declines.table import DEFAULT_TABLE_PATH, read_decline_table

FAILED_AT = pd.Timestamp("2026-03-10 12:00", tz="UTC")
METHOD = {"sepa": "sepa_debit", "bacs": "bacs_debit", "ach": "ach_debit"}
ODD_CODES = [None, np.nan, pd.NA, "", "  ", "zz_new", " Insufficient Funds ", "2001.0", "R1", "5"]


def example_code(code: str) -> str:
    """A raw code that hits the row: the row's code, or a range's upper bound."""
    return code.split("-")[1] if code[0].isdigit() and "-" in code else code


def reference_events(table, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One event per reference-table row (plus odd codes) and 0-4 random previous attempts."""
    rng = np.random.default_rng(seed)
    rows = table.rows
    processor = [*rows["processor"], *(["stripe"] * len(ODD_CODES))]
    code = [*rows["code"].map(example_code), *ODD_CODES]
    n = len(code)
    method = pd.Series(processor).map(METHOD).fillna("card").to_numpy()
    macs = np.array([None, "01", "02", "03", "04", "21", "24", "30", "99", 2], dtype=object)
    events = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "processor": processor,
            "payment_method": method,
            "card_brand": rng.choice(np.array(["visa", "Mastercard ", "amex", None], object), n),
            "decline_code": pd.Series(code, dtype=object),
            "merchant_advice_code": rng.choice(macs, n),
            "failed_at": FAILED_AT + pd.to_timedelta(rng.integers(0, 2000, n), unit="h"),
            "card_updated": rng.random(n) < 0.2,
        },
        index=rng.permutation(n) * 3 + 1,  # any index is kept
    )
    k = rng.integers(0, 5, n)
    owner = np.repeat(np.arange(n), k)
    back = pd.to_timedelta(rng.integers(0, 60 * 24, owner.size), unit="h")  # 0: the charge itself
    previous = pd.DataFrame(
        {
            "event_id": events["event_id"].to_numpy()[owner],
            "attempted_at": pd.DatetimeIndex(events["failed_at"])[owner] - back,
        }
    )
    return events, previous


def in_small_calls(rules, events, previous, size):
    """``decide_many`` of ``events`` in calls of at most ``size`` events (the memo path)."""
    parts = []
    for start in range(0, len(events), size):
        chunk = events.iloc[start : start + size]
        parts.append(
            rules.decide_many(chunk, previous[previous["event_id"].isin(chunk["event_id"])])
        )
    return pd.concat(parts)


@pytest.mark.parametrize(
    "limits",
    [RetryLimits(), RetryLimits(visa_max_reattempts_30d=2, mastercard_max_attempts_24h=2)],
    ids=["default", "strict"],
)
def test_small_calls_equal_one_vectorized_call_over_the_whole_table(limits):
    table = read_decline_table(DEFAULT_TABLE_PATH)  # a fresh table: its memo starts empty
    rules = RetryRules(limits, table)
    events, previous = reference_events(table, seed=5)
    assert len(events) > rules_module.SMALL_INPUT_ROWS  # one call: the vectorized path
    whole = rules.decide_many(events, previous)
    cold = in_small_calls(rules, events, previous, size=7)
    warm = in_small_calls(rules, events, previous, size=3)  # other groupings, warm memos
    assert_frame_equal(cold, whole)
    assert_frame_equal(warm, whole)
    assert table._memo and rules._text_memo and rules._decision_memo  # the memo paths ran


def test_single_events_equal_the_vectorized_path(monkeypatch):
    table = read_decline_table(DEFAULT_TABLE_PATH)
    rules = RetryRules(table=table)
    events, previous = reference_events(table, seed=11)
    pick = events.iloc[::9]
    for i in range(len(pick)):
        one = pick.iloc[[i]]
        prev = previous[previous["event_id"] == one["event_id"].iloc[0]]
        fast = rules.decide_many(one, prev)
        with monkeypatch.context() as m:
            m.setattr(table_module, "SMALL_INPUT_ROWS", 0)
            m.setattr(rules_module, "SMALL_INPUT_ROWS", 0)
            assert_frame_equal(fast, rules.decide_many(one, prev))


def test_classify_memo_equals_the_vectorized_path_for_odd_inputs(monkeypatch):
    table = read_decline_table(DEFAULT_TABLE_PATH)
    cases = [
        (["visa", "visa", "visa", "visa"], pd.Series(["5", 5, 5.0, True], dtype=object)),
        (["braintree", "braintree", " Braintree"], pd.Series([2001.0, np.nan, 2500.0])),
        (["ach", "bacs", "sepa"], pd.Series(["R1", "ARUDD-0", "am04"], dtype="string")),
        (["stripe", None, "paypal"], pd.Series([True, "x", None], dtype=object)),
        (["stripe", "stripe"], pd.Series([["a"], "do_not_honor"], dtype=object)),  # unhashable
        (["mastercard_mac", "mastercard_mac"], pd.Series([2, 21], dtype="Int64")),
    ]
    for processors, codes in cases:
        processor = pd.Series(processors, index=codes.index, dtype=object)
        memo = [table.classify(processor, codes) for _ in range(2)]  # cold, then warm
        with monkeypatch.context() as m:
            m.setattr(table_module, "SMALL_INPUT_ROWS", 0)
            vectorized = table.classify(processor, codes)
        assert_frame_equal(memo[0], vectorized)
        assert_frame_equal(memo[1], vectorized)


def test_warm_small_calls_do_not_reach_the_vectorized_code(monkeypatch):
    table = read_decline_table(DEFAULT_TABLE_PATH)
    rules = RetryRules(table=table)
    events, previous = reference_events(table, seed=3)
    chunk = events.iloc[:8]
    prev = previous[previous["event_id"].isin(chunk["event_id"])]
    first = rules.decide_many(chunk, prev)

    def fail(*args, **kwargs):
        raise AssertionError("the memo should have answered")

    monkeypatch.setattr(table, "_classify_vectorized", fail)
    monkeypatch.setattr(rules_module, "explain", fail)
    monkeypatch.setattr(rules_module, "rule_sources", fail)
    monkeypatch.setattr(rules_module, "word_rows", fail)
    monkeypatch.setattr(rules, "_decide_arrays", fail)  # the decision memo answers
    assert_frame_equal(rules.decide_many(chunk, prev), first)
    shifted = chunk.assign(failed_at=chunk["failed_at"] + pd.Timedelta("7h"))
    moved = prev.assign(attempted_at=prev["attempted_at"] + pd.Timedelta("7h"))
    again = rules.decide_many(shifted, moved)  # the same decisions, later
    assert_frame_equal(again.drop(columns="not_before"), first.drop(columns="not_before"))
    assert (again["not_before"] - first["not_before"]).dropna().eq(pd.Timedelta("7h")).all()


def test_decision_memo_starts_over_for_another_table_or_limits():
    rules = RetryRules(table=read_decline_table(DEFAULT_TABLE_PATH))
    events, previous = reference_events(rules.table, seed=6)
    chunk = events.iloc[:6]
    prev = previous[previous["event_id"].isin(chunk["event_id"])]
    rules.decide_many(chunk, prev)
    strict = RetryLimits(visa_max_reattempts_30d=1, mastercard_max_attempts_30d=1)
    fresh = RetryRules(strict, read_decline_table(DEFAULT_TABLE_PATH))
    rules.limits = strict
    assert_frame_equal(rules.decide_many(chunk, prev), fresh.decide_many(chunk, prev))
    rules.table = fresh.table
    assert rules.decide_many(chunk, prev) is not None
    assert rules._decision_memo_for == (strict, fresh.table)


def test_memos_are_bounded(monkeypatch):
    monkeypatch.setattr(table_module, "MEMO_MAX_ENTRIES", 5)
    monkeypatch.setattr(rules_module, "TEXT_MEMO_MAX_ENTRIES", 5)
    monkeypatch.setattr(rules_module, "DECISION_MEMO_MAX_ENTRIES", 5)
    table = read_decline_table(DEFAULT_TABLE_PATH)
    rules = RetryRules(table=table)
    events, previous = reference_events(table, seed=8)
    whole = rules.decide_many(events, previous)
    assert_frame_equal(in_small_calls(rules, events, previous, size=4), whole)
    assert all(len(memo) <= 5 for memo in table._memo.values())
    assert len(rules._text_memo) <= 5
    assert all(len(memo) <= 5 for memo in rules._decision_memo.values())


def test_new_limits_are_not_answered_from_the_old_memo():
    rules = RetryRules(table=read_decline_table(DEFAULT_TABLE_PATH))
    events = pd.DataFrame(
        {
            "event_id": ["a"],
            "processor": ["stripe"],
            "payment_method": ["card"],
            "card_brand": ["visa"],
            "decline_code": ["insufficient_funds"],
            "merchant_advice_code": [None],
            "failed_at": [FAILED_AT],
        }
    )
    assert "at most 15 reattempts" in rules.decide_many(events)["explanation"].iloc[0]
    rules.limits = RetryLimits(visa_max_reattempts_30d=4)
    assert "at most 4 reattempts" in rules.decide_many(events)["explanation"].iloc[0]


def test_pickles_drop_the_memos_and_old_pickles_still_load():
    rules = RetryRules(table=read_decline_table(DEFAULT_TABLE_PATH))
    events, previous = reference_events(rules.table, seed=2)
    chunk = events.iloc[:5]
    prev = previous[previous["event_id"].isin(chunk["event_id"])]
    expected = rules.decide_many(chunk, prev)
    copy = pickle.loads(pickle.dumps(rules))
    assert copy.table._memo == {} and copy._text_memo == {} and copy._decision_memo == {}
    assert_frame_equal(copy.decide_many(chunk, prev), expected)
    # a pickle made before the memos existed has neither attribute
    old = RetryRules.__new__(RetryRules)
    old.__setstate__({"limits": rules.limits, "table": copy.table})
    del copy.table.__dict__["_memo"]
    copy.table.__setstate__(dict(copy.table.__dict__))
    assert_frame_equal(old.decide_many(chunk, prev), expected)


@pytest.mark.parametrize(
    "dtype", ["datetime64[ns, UTC]", "datetime64[us, UTC]", "datetime64[s, Europe/Paris]"]
)
def test_to_utc_of_timestamps_equals_parsing_them(dtype):
    stamps = pd.Series(["2026-03-10 12:00", "2026-10-25 01:30"], index=[4, 9], name="at")
    stamps = pd.to_datetime(stamps).dt.tz_localize("UTC").astype(dtype)
    fast = to_utc(stamps, "at")  # the parsing path, as it was before the shortcut:
    pd.testing.assert_series_equal(
        fast, pd.to_datetime(stamps, utc=True, errors="coerce", format="mixed")
    )
    naive = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    pd.testing.assert_series_equal(to_utc(naive, "at"), fast)
    with pytest.raises(ValueError, match=r"at: missing or unparseable timestamp at row\(s\) \[9\]"):
        to_utc(stamps.where(stamps.index == 4), "at")


def spellings(code: str) -> list[str]:
    """Ways an integrator may send one code: as is, shouted, spaced, hyphenated, padded."""
    return [code, code.upper(), f"  {code} ", code.replace("_", " "), code.replace("_", "-")]


def test_text_codes_classify_without_pandas_as_the_vectorized_path(monkeypatch):
    """Plain-text inputs (the API's) miss the memo into ``_classify_texts``: every table
    code and alias in several spellings, range bounds and neighbours, odd numbers."""
    table = read_decline_table(DEFAULT_TABLE_PATH)
    rows = table.rows
    forms = rows["aliases"].fillna("").str.split("|")
    processors, codes = [], []
    for processor, code, aliases in zip(rows["processor"], rows["code"], forms, strict=True):
        if code[0].isdigit() and "-" in code:
            lo, hi = code.split("-")
            raw = [lo, hi, str(int(hi) + 1), f"{lo}.0", f"{hi}.00"]
        else:
            raw = [*spellings(code), *(a.strip() for a in aliases if a.strip())]
        processors += [processor] * len(raw)
        codes += raw
    odd = ["", "  ", "1e3", "-5", "0x1F", "Ⅻ", "٣", "R1", "r10", "ARUDD-0", "addacs 1", "5", "05"]
    for processor in [*table.vocabularies, " Stripe ", "MASTERCARD-MAC", "paypal"]:
        processors += [processor] * (len(odd) + 1)
        codes += [*odd, None]
    processor = pd.Series(processors, dtype=object)
    code = pd.Series(codes, dtype=object)
    with monkeypatch.context() as m:
        m.setattr(table_module, "SMALL_INPUT_ROWS", 0)
        expected = table.classify(processor, code)

    def fail(*args, **kwargs):
        raise AssertionError("text inputs should not need the vectorized path")

    monkeypatch.setattr(table, "_classify_vectorized", fail)
    got = pd.concat(
        [
            table.classify(processor.iloc[i : i + 50], code.iloc[i : i + 50])
            for i in range(0, len(code), 50)
        ]
    )
    assert_frame_equal(got, expected)


def test_row_wording_equals_the_vectorized_wording():
    """``word_rows`` (the memo path's wording) against ``explain`` and ``rule_sources`` on
    random decisions, for the default and for unusual limits."""
    from training.declines.wording import rule_sources, word_rows

    rng = np.random.default_rng(4)
    caps = np.array(
        [
            "visa_reattempt_cap",
            "mastercard_attempt_cap",
            "card_attempt_cap",
            "ach_representment_cap",
            "sepa_representment_cap",
            "bacs_representment_cap",
        ],
        dtype=object,
    )
    others = [
        "hard_decline",
        "mastercard_mac_stop",
        "not_retryable",
        "ach_reinitiation_window",
        "bacs_representment_window",
        "mastercard_mac_update_first",
        "after_update",
        "unknown_code",
        "mastercard_mac_retry_later",
        "payment_method_updated",
        "retry_allowed",
    ]
    n = 400
    hours = rng.random(n) * 100
    cap_rule = rng.choice(caps, n)
    rule = np.where(rng.random(n) < 0.3, cap_rule, rng.choice(np.array(others, object), n))
    parts = {
        "processor": rng.choice(np.array(["stripe", "ach", "bacs"], object), n),
        "code": pd.array(
            rng.choice(np.array(["do_not_honor", "R01", None], object), n), dtype="string"
        ),
        "category": rng.choice(np.array(["insufficient_funds", "other"], object), n),
        "retryable": rng.choice(np.array(["yes", "no", "after_update"], object), n),
        "rule": rule,
        "cap_rule": cap_rule,
        "code_source": rng.choice(np.array(["Stripe docs", "Nacha rules"], object), n),
        "in_30d": rng.integers(1, 40, n),
        "n_prev": rng.integers(0, 40, n),
        "mac_wait": np.where(rng.random(n) < 0.5, np.round(hours), np.round(hours, 4)),
    }
    for lim in [RetryLimits(), RetryLimits(unknown_min_wait_hours=1.5, visa_max_reattempts_30d=3)]:
        expected = RetryRules._word(parts, lim)[0].tolist()  # the vectorized wording
        texts, sources = word_rows(lim, {k: v.tolist() for k, v in parts.items()})
        assert texts == expected
        assert sources == rule_sources(rule, cap_rule, parts["code_source"]).tolist()
