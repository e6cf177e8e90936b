"""The product's one path for each helper against reference implementations.

Classification (``DeclineTable.classify``: Python ``re`` on the distinct pairs) is checked
against the former pandas implementation, the wording (``wording.word_rows``, row by row)
against the former vectorized one, both kept below; the decision memo of short calls
(``RetryRules._decide_memo``) against the array path it caches.
"""

import pickle

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from training.declines import rules as rules_module
from training.declines import table as table_module
from training.declines.rules import RetryLimits, RetryRules, to_utc
from training.declines.table import (
    DEFAULT_TABLE_PATH,
    NETWORK_VOCABULARIES,
    UNKNOWN_CATEGORY,
    UNKNOWN_RETRYABLE,
    DeclineTable,
    normalize_processor,
    read_decline_table,
)
from training.declines.wording import (
    _CAP_SOURCES,
    _FIXED_SOURCES,
    _FROM_CODE,
    _cap_texts,
    _rule_texts,
    word_rows,
)

# -- reference implementations (the former vectorized paths) ----------------------------


def reference_normalize_processor(processor: pd.Series) -> pd.Series:
    return (
        processor.astype("string")
        .str.strip()
        .str.casefold()
        .str.replace(r"[\s\-]+", "_", regex=True)
    )


def reference_normalize_codes(processor: pd.Series, code: pd.Series) -> pd.Series:
    """Lookup keys for raw codes (``processor`` normalized); missing and blank: ``<NA>``."""
    key = code.astype("string").str.strip().str.casefold()
    key = key.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
    key = key.str.replace(r"[\s\-]+", "_", regex=True)
    key = key.mask(key == "")
    bacs = processor == "bacs"
    key = key.mask(bacs, key.str.replace(r"^arudd_?([0-9a-z])$", r"\1", regex=True))
    key = key.mask(bacs, key.str.replace(r"^addacs_?([0-9a-z])$", r"addacs_\1", regex=True))
    key = key.mask(processor == "ach", key.str.replace(r"^r(\d)$", r"r0\1", regex=True))
    two_digit = processor.isin(list(NETWORK_VOCABULARIES))
    key = key.mask(two_digit, key.str.replace(r"^(\d)$", r"0\1", regex=True))
    return key


def reference_classify(table, processor: pd.Series, code: pd.Series) -> pd.DataFrame:
    """``DeclineTable.classify`` with pandas string operations on all rows at once."""
    proc_text, code_text = processor.astype("string"), code.astype("string")
    proc = reference_normalize_processor(proc_text).reset_index(drop=True)
    key = reference_normalize_codes(proc, code_text.reset_index(drop=True))
    row = (proc + table_module._SEP + key).map(table._keys)
    row = row.to_numpy(dtype="float64", na_value=np.nan)
    number = pd.to_numeric(key, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    for rng in table._ranges.itertuples():
        inside = (
            np.isnan(row)
            & (proc.to_numpy(dtype="object", na_value="") == rng.processor)
            & (number >= rng.lo)
            & (number <= rng.hi)
        )
        row[inside] = rng.Index
    known = ~np.isnan(row)
    row_int = np.where(known, row, -1).astype("int64")
    take = np.where(known, row_int, 0)
    raw = code_text.reset_index(drop=True).str.strip()
    raw_values = raw.mask(raw == "").to_numpy(dtype="object")
    rows = table.rows
    in_range = known & table._is_range[take]
    table_code = rows["code"].to_numpy()[take]
    columns = {
        "category": np.where(known, rows["category"].to_numpy()[take], UNKNOWN_CATEGORY),
        "retryable": np.where(known, rows["retryable"].to_numpy()[take], UNKNOWN_RETRYABLE),
        "known": known,
        "code": pd.array(np.where(known & ~in_range, table_code, raw_values), dtype="string"),
        "raw_code": pd.array(raw_values, dtype="string"),
        "table_row": row_int,
    }
    return pd.DataFrame(columns, index=code.index)


def reference_explain(lim, parts) -> pd.Series:
    """One sentence per decision, vectorized (``parts``: the columns of ``word_rows``)."""
    rule, cap_rule = np.asarray(parts["rule"], dtype=object), np.asarray(parts["cap_rule"])
    cap_text = pd.Series(cap_rule).map(_cap_texts(lim)).to_numpy(dtype="object")
    counted = (
        pd.Series(parts["in_30d"]).astype(str)
        + " attempt(s) in the last 30 days, "
        + pd.Series(parts["n_prev"]).astype(str)
        + " earlier attempt(s) on this charge"
    )
    base = pd.Series(rule).map(_rule_texts(lim)).to_numpy(dtype="object")
    hours = pd.Series(parts["mac_wait"], dtype="float64").round(2).astype(str)
    hours = hours.str.replace(r"\.0+$", "", regex=True)
    later = "Mastercard merchant advice code: retry later, after " + hours + " h"
    base = np.where(rule == "mastercard_mac_retry_later", later.to_numpy(dtype="object"), base)
    base = np.where(np.isin(rule, list(set(cap_rule.tolist()))), "cap reached: " + cap_text, base)
    with_cap = np.isin(
        rule, ["retry_allowed", "payment_method_updated", "mastercard_mac_retry_later"]
    )
    base = np.where(with_cap, base + "; " + cap_text, base)
    code_text = pd.Series(pd.array(parts["code"], dtype="string")).fillna("(none)").astype(str)
    head = (
        pd.Series(parts["processor"]).astype(str)
        + " "
        + code_text
        + " -> "
        + pd.Series(parts["category"], dtype=object)
        + " (retryable: "
        + pd.Series(parts["retryable"], dtype=object)
        + "): "
    )
    return head + pd.Series(base) + " [" + counted + "]"


def reference_rule_sources(rule, cap_rule, code_source) -> np.ndarray:
    """The source to cite for each decision's rule, vectorized."""
    out = pd.Series(rule).map(_FIXED_SOURCES)
    out = out.mask(pd.Series(rule).isin(list(_FROM_CODE)), pd.Series(code_source))
    out = out.fillna(pd.Series(cap_rule).map(_CAP_SOURCES))  # retry_allowed: cite the cap
    return out.to_numpy()


def reference_word_rows(lim, parts) -> tuple[list[str], list]:
    """``word_rows`` from the vectorized reference functions."""
    parts = {name: list(values) for name, values in parts.items()}
    texts = reference_explain(lim, parts).tolist()
    sources = reference_rule_sources(
        np.array(parts["rule"], dtype=object),
        np.array(parts["cap_rule"], dtype=object),
        np.array(parts["code_source"], dtype=object),
    )
    return texts, sources.tolist()


# -- inputs --------------------------------------------------------------------------------

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
    """``decide_many`` of ``events`` in calls of at most ``size`` events (the decision memo)."""
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
            m.setattr(rules_module, "SMALL_INPUT_ROWS", 0)  # no decision memo
            assert_frame_equal(fast, rules.decide_many(one, prev))


ODD_CLASSIFY_CASES = [
    (["visa", "visa", "visa", "visa"], pd.Series(["5", 5, 5.0, True], dtype=object)),
    (["braintree", "braintree", " Braintree"], pd.Series([2001.0, np.nan, 2500.0])),
    (["ach", "bacs", "sepa"], pd.Series(["R1", "ARUDD-0", "am04"], dtype="string")),
    (["stripe", None, "paypal"], pd.Series([True, "x", None], dtype=object)),
    (["stripe", "stripe"], pd.Series([["a"], "do_not_honor"], dtype=object)),  # unhashable
    (["mastercard_mac", "mastercard_mac"], pd.Series([2, 21], dtype="Int64")),
    (["visa", "visa", "stripe"], pd.Series([np.str_("5"), pd.NA, pd.NaT], dtype=object)),
    (["braintree", "visa"], pd.Series([2001, 51], dtype="int64", index=[7, 3])),
    (["stripe", "visa"], pd.Series(["expired_card", "51"], dtype="category")),
    ([], pd.Series([], dtype=object)),
]


@pytest.mark.parametrize("processors, codes", ODD_CLASSIFY_CASES)
def test_classify_equals_the_reference_for_odd_inputs(processors, codes):
    table = read_decline_table(DEFAULT_TABLE_PATH)
    processor = pd.Series(processors, index=codes.index, dtype=object)
    expected = reference_classify(table, processor, codes)
    for _ in range(2):  # cold, then from the memo
        assert_frame_equal(table.classify(processor, codes), expected)


def test_normalize_processor_equals_the_reference():
    values = pd.Series([" Stripe ", "MASTERCARD-MAC", None, 5, "a \t b", np.nan, "Ⅻ"], name="p")
    values.index = values.index * 2 + 1
    expected = reference_normalize_processor(values)
    pd.testing.assert_series_equal(normalize_processor(values), expected)
    pd.testing.assert_series_equal(normalize_processor(values.astype("string")), expected)


def test_warm_small_calls_classify_and_word_nothing(monkeypatch):
    table = read_decline_table(DEFAULT_TABLE_PATH)
    rules = RetryRules(table=table)
    events, previous = reference_events(table, seed=3)
    chunk = events.iloc[:8]
    prev = previous[previous["event_id"].isin(chunk["event_id"])]
    first = rules.decide_many(chunk, prev)

    def fail(*args, **kwargs):
        raise AssertionError("the memo should have answered")

    monkeypatch.setattr(table, "_classify_pair", fail)
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
    assert len(table._memo) <= 5 and len(table._columns_memo) <= 5
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
    explanation = rules.decide_many(events)["explanation"].iloc[0]
    assert "at most 20 merchant-initiated reattempts" in explanation
    rules.limits = RetryLimits(visa_max_reattempts_30d=4)
    assert (
        "at most 4 merchant-initiated reattempts"
        in rules.decide_many(events)["explanation"].iloc[0]
    )


def test_pickles_drop_the_memos_and_old_pickles_still_load():
    rules = RetryRules(table=read_decline_table(DEFAULT_TABLE_PATH))
    events, previous = reference_events(rules.table, seed=2)
    chunk = events.iloc[:5]
    prev = previous[previous["event_id"].isin(chunk["event_id"])]
    expected = rules.decide_many(chunk, prev)
    copy = pickle.loads(pickle.dumps(rules))
    assert copy.table._memo == {} and copy._text_memo == {} and copy._decision_memo == {}
    assert copy.table._columns_memo == {}
    assert_frame_equal(copy.decide_many(chunk, prev), expected)
    # a pickle made before the memos existed has neither attribute
    old = RetryRules.__new__(RetryRules)
    old.__setstate__({"limits": rules.limits, "table": copy.table})
    del copy.table.__dict__["_memo"]
    copy.table.__setstate__(dict(copy.table.__dict__))
    assert_frame_equal(old.decide_many(chunk, prev), expected)
    # a table pickled before its row arrays existed makes them on load
    state = dict(rules.table.__getstate__())
    del state["wait_hours"], state["sources"], state["_columns_memo"]
    older = DeclineTable.__new__(DeclineTable)
    older.__setstate__(state)
    np.testing.assert_array_equal(older.wait_hours, rules.table.wait_hours)
    assert older.sources.tolist() == rules.table.sources.tolist()


def test_row_arrays_equal_the_table_columns():
    """The rules read ``wait_hours`` and ``source`` per row from arrays made at load."""
    table = read_decline_table(DEFAULT_TABLE_PATH)
    wait = table.rows["wait_hours"].to_numpy(dtype="float64", na_value=np.nan)
    np.testing.assert_array_equal(table.wait_hours, wait)
    assert np.isnan(wait).any() and (~np.isnan(wait)).any()  # both kinds of rows checked
    assert table.sources.tolist() == table.rows["source"].tolist()


@pytest.mark.parametrize(
    "processor, code",
    [
        ("stripe", "insufficient_funds"),
        ("visa", "51"),
        ("adyen", None),
        (None, "x"),
        ("ach", "R01"),
    ],
)
def test_one_pairs_columns_are_kept_and_every_call_gets_its_own(processor, code):
    """A lone request's (processor, code) pair: its classified columns made once, kept,
    equal to the several-pair path's row, and each call's arrays its own (a caller
    writing into them changes nothing for the next)."""
    table = read_decline_table(DEFAULT_TABLE_PATH)
    several = table.classify_texts([processor, "visa"], [code, "05"])  # the general path
    for _ in range(2):
        one = table.classify_texts([processor], [code])
        assert (processor, code) in table._columns_memo
        assert list(one) == list(several)
        for name, values in one.items():
            pd.testing.assert_series_equal(pd.Series(values), pd.Series(several[name][:1]))
        one["category"][0] = "written by a caller"
        one["table_row"][0] = -7
    again = table.classify_texts([processor], [code])
    assert again["category"][0] == several["category"][0]
    assert again["table_row"][0] == several["table_row"][0]


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


def every_spelling() -> tuple[pd.Series, pd.Series]:
    """Every table code and alias in several spellings, range bounds and neighbours, odd
    numbers, for every vocabulary and a few unknown or oddly written processors."""
    rows = read_decline_table(DEFAULT_TABLE_PATH).rows
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
    for processor in [*sorted(set(rows["processor"])), " Stripe ", "MASTERCARD-MAC", "paypal"]:
        processors += [processor] * (len(odd) + 1)
        codes += [*odd, None]
    return pd.Series(processors, dtype=object), pd.Series(codes, dtype=object)


def test_every_spelling_classifies_as_the_reference():
    """In one call, in calls of 50 (cold and warm memo), and in other column dtypes."""
    table = read_decline_table(DEFAULT_TABLE_PATH)
    processor, code = every_spelling()
    expected = reference_classify(table, processor, code)
    assert_frame_equal(table.classify(processor, code), expected)
    for fresh in (read_decline_table(DEFAULT_TABLE_PATH), table):
        got = pd.concat(
            [
                fresh.classify(processor.iloc[i : i + 50], code.iloc[i : i + 50])
                for i in range(0, len(code), 50)
            ]
        )
        assert_frame_equal(got, expected)
    as_string = processor.astype("string"), code.astype("string")
    assert_frame_equal(table.classify(*as_string), reference_classify(table, *as_string))


def test_table_keys_are_the_reference_normalization_of_its_forms():
    table = read_decline_table(DEFAULT_TABLE_PATH)
    rows = table.rows
    forms = pd.concat(
        [
            rows["code"],
            rows["aliases"].str.split("|").explode().str.strip().loc[lambda s: s != ""],
        ]
    )
    processor = rows["processor"].loc[forms.index]
    keys = processor + table_module._SEP + reference_normalize_codes(processor, forms)
    assert table._keys == dict(zip(keys, forms.index, strict=True))


def test_row_wording_equals_the_reference_wording():
    """``word_rows`` against the vectorized reference on random decisions, for the default
    and for unusual limits."""
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
        columns = {k: v.tolist() for k, v in parts.items()}
        assert word_rows(lim, columns) == reference_word_rows(lim, columns)


@pytest.mark.parametrize("size", [None, 5], ids=["one call", "calls of 5"])
def test_decisions_are_worded_as_the_reference_wording(monkeypatch, size):
    """Whole decisions, in one call and through the memos, worded by the reference."""
    table = read_decline_table(DEFAULT_TABLE_PATH)
    events, previous = reference_events(table, seed=9)
    with monkeypatch.context() as m:
        m.setattr(rules_module, "word_rows", reference_word_rows)
        expected = RetryRules(table=table).decide_many(events, previous)
    rules = RetryRules(table=table)
    if size is None:
        assert_frame_equal(rules.decide_many(events, previous), expected)
    else:
        assert_frame_equal(in_small_calls(rules, events, previous, size), expected)


def test_hours_as_nanoseconds_equal_pandas():
    """``_hours_ns`` (integer arithmetic for whole hours) against ``pd.to_timedelta``."""
    rng = np.random.default_rng(0)
    cases = [
        np.array([0.0, 1.0, 24.0, 72.0, 1e6, -5.0, 1_999_999.0]),
        np.round(rng.uniform(0, 5000, 1000)),
        rng.uniform(0, 1000, 1000),
        np.array([0.1, 0.5, 1 / 3, 2.75]),
        np.array([np.nan, 3.0]),
        np.array([2_100_000.0, 1.0]),  # beyond the whole-hours range: pandas
        np.array([], dtype=float),
    ]
    for hours in cases:
        expected = pd.to_timedelta(hours, unit="h").as_unit("ns").asi8
        np.testing.assert_array_equal(rules_module._hours_ns(hours), expected)


@pytest.mark.parametrize(
    "values",
    [
        ["01", None, "21", "02"],  # object, text
        [1, None, 21, "02"],  # object, mixed types
        [1.0, np.nan, 21.0, 2.0],  # float
        pd.array([1, None, 21, 2], dtype="Int64"),
        pd.array(["01", None, "21", "02"], dtype="string"),
    ],
)
def test_card_only_macs_equal_the_series_where(values):
    mac = pd.Series(values, index=[7, 3, 5, 1])
    for card in ([True, True, True, True], [True, False, True, False], [False] * 4):
        is_card = np.array(card)
        expected = table_module.text_values(mac.where(is_card))
        assert rules_module._card_only(mac, is_card) == expected
