"""The reference table: coverage, validity, forgiving lookup, unknown codes."""

import numpy as np
import pandas as pd
import pytest

from training.declines.table import (
    CATEGORIES,
    DEFAULT_TABLE_PATH,
    HARD_CATEGORIES,
    RETRYABLE,
    UnknownProcessorError,
    load_decline_table,
    read_decline_table,
    unknown_codes_report,
)

TABLE = load_decline_table()
ROW_IDS = [f"{p}:{c}" for p, c in zip(TABLE.rows["processor"], TABLE.rows["code"], strict=True)]


def _example_code(code: str) -> str:
    """A raw code that must hit the row: the row's code, or a range's upper bound."""
    return code.split("-")[1] if code[0].isdigit() and "-" in code else code


@pytest.mark.parametrize("row", TABLE.rows.to_dict("records"), ids=ROW_IDS)
def test_every_row_is_found_by_lookup(row):
    info = TABLE.lookup(row["processor"], _example_code(row["code"]))
    assert info.known
    assert (info.category, info.retryable) == (row["category"], row["retryable"])
    assert info.source == row["source"]


def test_classify_agrees_with_the_whole_table():
    rows = TABLE.rows
    raw = rows["code"].map(_example_code)
    shuffled = pd.Index(np.arange(len(rows))[::-1] * 7)  # any index is kept
    got = TABLE.classify(rows["processor"].set_axis(shuffled), raw.set_axis(shuffled))
    assert got.index.equals(shuffled)
    assert got["known"].all()
    assert (got["category"].to_numpy() == rows["category"].to_numpy()).all()
    assert (got["retryable"].to_numpy() == rows["retryable"].to_numpy()).all()


def test_rows_are_valid_and_sourced():
    rows = TABLE.rows
    assert set(rows["category"]) <= set(CATEGORIES)
    assert set(rows["retryable"]) <= set(RETRYABLE)
    assert (rows["source"].str.strip() != "").all()
    assert (rows["description"].str.strip() != "").all()
    assert not rows.duplicated(["processor", "code"]).any()
    assert (rows.loc[rows["category"].isin(HARD_CATEGORIES), "retryable"] == "no").all()
    assert TABLE.version == DEFAULT_TABLE_PATH.read_text().splitlines()[0].split(":", 1)[1].strip()
    assert len(CATEGORIES) == 15 and CATEGORIES[0] == "insufficient_funds"
    assert CATEGORIES[-1] == "other"


def _codes(processor):
    return set(TABLE.rows.loc[TABLE.rows["processor"] == processor, "code"])


STRIPE_CARD_CODES = {
    "authentication_required",
    "approve_with_id",
    "call_issuer",
    "card_not_supported",
    "card_velocity_exceeded",
    "currency_not_supported",
    "do_not_honor",
    "do_not_try_again",
    "duplicate_transaction",
    "expired_card",
    "fraudulent",
    "generic_decline",
    "incorrect_number",
    "incorrect_cvc",
    "incorrect_pin",
    "incorrect_zip",
    "insufficient_funds",
    "invalid_account",
    "invalid_amount",
    "invalid_cvc",
    "invalid_expiry_month",
    "invalid_expiry_year",
    "invalid_number",
    "invalid_pin",
    "issuer_not_available",
    "lost_card",
    "merchant_blacklist",
    "new_account_information_available",
    "no_action_taken",
    "not_permitted",
    "offline_pin_required",
    "online_or_offline_pin_required",
    "pickup_card",
    "pin_try_exceeded",
    "processing_error",
    "reenter_transaction",
    "restricted_card",
    "revocation_of_all_authorizations",
    "revocation_of_authorization",
    "security_violation",
    "service_not_allowed",
    "stolen_card",
    "stop_payment_order",
    "testmode_decline",
    "transaction_not_allowed",
    "try_again_later",
    "withdrawal_count_limit_exceeded",
}


@pytest.mark.parametrize(
    ("processor", "required"),
    [
        ("stripe", STRIPE_CARD_CODES),
        ("adyen", {str(c) for c in range(2, 47) if c not in (13, 30)}),
        (
            "braintree",
            {str(c) for c in range(2000, 2109)} | {"2109-2999", "3000"},
        ),
        (
            "sepa",
            {
                "AC01",
                "AC04",
                "AC06",
                "AM04",
                "MD01",
                "MD06",
                "MS02",
                "MS03",
                "AM05",
                "AG01",
                "MD07",
                "RR04",
                "SL01",
            },
        ),
        ("bacs", set("0123456789AB") | {f"ADDACS-{c}" for c in "0123BCDER"}),
        ("ach", {f"R{c:02d}" for c in range(1, 40)} | {"R50", "R51", "R52", "R53"}),
        ("mastercard_mac", {"01", "02", "03", "04", "21"} | {str(c) for c in range(24, 31)}),
    ],
)
def test_every_code_family_is_covered(processor, required):
    assert required <= _codes(processor)


def test_visa_categories_are_covered_and_category_1_never_retries():
    visa = TABLE.rows[TABLE.rows["processor"] == "visa"]
    assert set(visa["network_category"].dropna().astype(int)) == {1, 2, 3, 4}
    assert (visa.loc[visa["network_category"] == 1, "retryable"] == "no").all()
    assert {"04", "07", "12", "14", "15", "41", "43", "46", "57", "R0", "R1", "R3"} <= set(
        visa.loc[visa["network_category"] == 1, "code"]
    )


def test_braintree_hard_declines_are_never_plain_retries():
    bt = TABLE.rows[TABLE.rows["processor"] == "braintree"]
    assert set(bt["processor_type"]) <= {"hard", "soft", ""}
    assert (bt.loc[bt["processor_type"] == "hard", "retryable"] != "yes").all()


@pytest.mark.parametrize(
    ("processor", "raw", "code", "category"),
    [
        ("stripe", "Insufficient Funds", "insufficient_funds", "insufficient_funds"),
        ("stripe", "  INSUFFICIENT_FUNDS ", "insufficient_funds", "insufficient_funds"),
        ("stripe", "expired-card", "expired_card", "expired_card"),
        (" Stripe ", "insufficient_funds", "insufficient_funds", "insufficient_funds"),
        ("sepa", "am04", "AM04", "insufficient_funds"),
        ("sepa", " Ac04", "AC04", "account_closed"),
        ("braintree", " 2001 ", "2001", "insufficient_funds"),
        ("braintree", 2001.0, "2001", "insufficient_funds"),
        ("braintree", "2001.0", "2001", "insufficient_funds"),
        ("braintree", "2105", "2105", "do_not_honor"),
        ("braintree", "2999", "2999", "do_not_honor"),
        ("bacs", "0", "0", "insufficient_funds"),
        ("bacs", "ARUDD-0", "0", "insufficient_funds"),
        ("bacs", "arudd 0", "0", "insufficient_funds"),
        ("bacs", "b", "B", "account_closed"),
        ("bacs", "addacs 1", "ADDACS-1", "dispute_or_revoked"),
        ("ach", "r1", "R01", "insufficient_funds"),
        ("ach", "R09", "R09", "insufficient_funds"),
        ("adyen", "12", "12", "insufficient_funds"),
        ("adyen", "Not enough balance", "12", "insufficient_funds"),
        ("adyen", "expired card", "6", "expired_card"),
        ("visa", "5", "05", "do_not_honor"),
        ("visa", "r0", "R0", "dispute_or_revoked"),
        ("mastercard_mac", "3", "03", "do_not_honor"),
        ("Mastercard MAC", "21", "21", "dispute_or_revoked"),
    ],
)
def test_lookup_is_forgiving_about_form(processor, raw, code, category):
    info = TABLE.lookup(processor, raw)
    assert info.known
    assert (info.code, info.category) == (code, category)


@pytest.mark.parametrize(
    ("processor", "raw"),
    [
        ("stripe", "insufficient_fundz"),
        ("braintree", "3001"),
        ("sepa", "AM4"),
        ("bacs", "ADDACS-9"),
        ("stripe", None),
        ("stripe", ""),
        ("stripe", "  "),
        ("ach", np.nan),
    ],
)
def test_unknown_or_missing_codes_map_to_other(processor, raw):
    info = TABLE.lookup(processor, raw)
    assert (info.category, info.known, info.retryable) == ("other", False, "yes")
    assert info.source == ""


def test_unknown_codes_are_counted_and_reported():
    processor = pd.Series(["stripe", "stripe", "stripe", "sepa", "sepa", "nope", "ach"])
    code = pd.Series(["mystery", "mystery", "insufficient_funds", "XX99", None, "R01", "R01"])
    classified = TABLE.classify(processor, code)
    assert classified["known"].tolist() == [False, False, True, False, False, False, True]
    report = unknown_codes_report(classified, processor)
    assert report.to_dict("records") == [
        {"processor": "stripe", "raw_code": "mystery", "count": 2},
        {"processor": "nope", "raw_code": "R01", "count": 1},
        {"processor": "sepa", "raw_code": "(missing)", "count": 1},
        {"processor": "sepa", "raw_code": "XX99", "count": 1},
    ]


def test_codes_by_category_feed_the_simulator():
    assert TABLE.codes("stripe", "lost_or_stolen") == ["lost_card", "pickup_card", "stolen_card"]
    assert "2105-2999" not in TABLE.codes("braintree", "do_not_honor")
    assert TABLE.codes("sepa", "expired_card") == []
    with pytest.raises(ValueError, match="unknown category"):
        TABLE.codes("stripe", "nope")


def test_unknown_processor_is_a_clear_error():
    with pytest.raises(UnknownProcessorError, match="unknown processor 'paypal'.*stripe"):
        TABLE.lookup("paypal", "x")


def test_default_table_is_cached():
    assert load_decline_table() is TABLE


def _write(tmp_path, text):
    path = tmp_path / "t.csv"
    path.write_text(text)
    return path


HEADER = "processor,code,category,retryable,description,source\n"
HEADER_EXT = (
    "processor,code,category,retryable,description,source,aliases,processor_type,"
    "network_category,wait_hours,checked_on,account_gone\n"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HEADER + "stripe,x,insufficient_funds,yes,d,s\n", "first line must be"),
        ("# version: 1\n" + HEADER + "stripe,x,broke,yes,d,s\n", r"category .* line\(s\) \[3\]"),
        ("# version: 1\n" + HEADER + "stripe,x,other,maybe,d,s\n", r"retryable .* \[3\]"),
        ("# version: 1\n" + HEADER + "stripe,x,other,yes,d,\n", r"empty source .* \[3\]"),
        (
            "# version: 1\n" + HEADER + "stripe,x,other,yes,d,s\nstripe,x,other,no,d,s\n",
            r"duplicate .* \[3, 4\]",
        ),
        ("# version: 1\n" + HEADER + "stripe,x,lost_or_stolen,yes,d,s\n", "hard category"),
        ("# version: 1\nprocessor,code\nstripe,x\n", "missing column"),
    ],
)
def test_bad_reference_files_are_refused_with_the_line(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        read_decline_table(_write(tmp_path, text))


def test_a_custom_table_path_is_read(tmp_path):
    path = _write(tmp_path, "# version: test-1\n" + HEADER + "stripe,x,other,no,d,s\n")
    table = load_decline_table(path)
    assert table.version == "test-1"
    assert table.lookup("stripe", "X").retryable == "no"


def test_every_row_is_dated_and_sourced():
    rows = TABLE.rows
    checked = pd.to_datetime(rows["checked_on"], format="%Y-%m-%d", errors="coerce")
    assert checked.notna().all(), rows.loc[checked.isna(), ["processor", "code"]]
    assert (rows["source"].str.len() > 10).all()
    # the rows this version re-checked carry its date
    version_date = pd.Timestamp(TABLE.version.split("-")[0].replace(".", "-"))
    recheck = rows["processor"].isin(["braintree", "visa", "mastercard_mac"])
    assert (checked[recheck] == version_date).all()


def test_every_braintree_code_has_its_documented_type_and_no_hard_one_is_retried():
    bt = TABLE.rows[TABLE.rows["processor"] == "braintree"].set_index("code")
    documented = {str(c) for c in range(2000, 2109)} | {"2109-2999", "3000"}
    assert documented <= set(bt.index)
    assert set(bt.loc[sorted(documented), "processor_type"]) == {"hard", "soft"}
    hard = bt[bt["processor_type"] == "hard"]
    assert (hard["retryable"] != "yes").all(), hard[hard["retryable"] == "yes"]
    for code in ("2052", "2107", "2108"):  # documented hard, once answered retryable
        assert bt.loc[code, "retryable"] == "no"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (HEADER_EXT + "stripe,x,other,yes,d,s,,,,,21-11-2026,\n", r"checked_on .* \[3\]"),
        (HEADER_EXT + "stripe,x,other,no,d,s,,,,,,yes\n", r"account_gone on a card .* \[3\]"),
        (HEADER_EXT + "sepa,X1,other,yes,d,s,,,,,,yes\n", r"account_gone on a card .* \[3\]"),
        (HEADER_EXT + "sepa,X1,other,no,d,s,,,,,,maybe\n", r"account_gone not yes .* \[3\]"),
    ],
)
def test_dates_and_account_gone_flags_are_validated(tmp_path, body, match):
    path = tmp_path / "t.csv"
    path.write_text("# version: 1\n" + body)
    with pytest.raises(ValueError, match=match):
        read_decline_table(path)
