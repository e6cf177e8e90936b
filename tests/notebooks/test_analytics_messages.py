"""Message response, revenue at risk, readable tables and the figures."""

import pandas as pd
import pytest
from analytics_history import at

from training import analytics as ra


@pytest.fixture
def cycles(four_invoices):
    return ra.dunning_cycles(four_invoices, 14, as_of=at(30))


@pytest.fixture
def outcomes(four_invoices, cycles):
    return ra.message_outcomes(four_invoices, cycles)


def test_pay_through_goes_to_the_last_message_before_the_payment(outcomes):
    got = outcomes.set_index("message_id")
    # in_3 paid on day 3: msg_1 (day 2) gets it, msg_0 (day 1) does not, msg_2 came after
    assert got["paid_through"].to_dict() == {
        "msg_0": False,
        "msg_1": True,
        "msg_2": False,
        "msg_3": False,  # in_2 was never recovered within its window
    }
    assert got["local_send_hour"].tolist() == [3, 3, 3, 3]  # 08:30 UTC in New York


def test_message_response_rates(outcomes):
    table = ra.message_response(outcomes)
    row = table.loc[("friendly_reminder", "email", 3)]
    assert row["sent"] == 2
    assert row["click_rate"] == 0.5 and row["pay_through_rate"] == 0.5
    by_template = ra.message_response(outcomes, by=("template", "channel"))
    assert by_template.loc[("payment_link", "sms"), "click_rate"] == 1.0
    assert by_template.loc[("final_notice", "email"), "click_rate"] == 0.0
    assert by_template["sent"].iloc[0] == 2  # most sent first


def test_response_grid_masks_thin_cells(outcomes):
    grid = ra.response_by_send_hour(outcomes, "click_rate", min_sent=2)
    assert grid.shape == (3, 24)
    assert grid.loc["friendly_reminder / email", 3] == 0.5
    assert grid.loc["payment_link / sms"].isna().all()  # one message only
    with pytest.raises(ValueError, match="unknown rate 'sent'"):
        ra.response_by_send_hour(outcomes, "sent")
    with pytest.raises(ValueError, match="cannot group messages by"):
        ra.message_response(outcomes, by=("colour",))


def test_revenue_at_risk_in_major_units(cycles):
    table = ra.revenue_at_risk(cycles)
    eur = table.loc["EUR"]
    assert eur["invoices"] == 2
    assert eur["at_risk"] == pytest.approx(30.00)
    assert eur["recovered_by_retry"] == pytest.approx(10.00)
    assert eur["recovered_by_customer"] == pytest.approx(20.00)
    assert eur["recovered_share"] == pytest.approx(1.0)
    assert table.loc["USD", "unrecovered"] == pytest.approx(30.00)
    assert table.loc["JPY", "at_risk"] == pytest.approx(500.0)  # no minor unit


def test_to_major_uses_iso_minor_units():
    got = ra.to_major(pd.Series([1999, 500, 1234, 7]), pd.Series(["eur", "JPY", "KWD", "XYZ"]))
    assert got.tolist() == pytest.approx([19.99, 500.0, 1.234, 0.07])


def test_readable_formats_rates_and_counts():
    table = pd.DataFrame(
        {"invoices": [12345, 2], "recovery_rate": [0.4312, float("nan")], "at_risk": [1.5, 2.0]},
        index=pd.Index(["a", "b"], name="group"),
    )
    out = ra.readable(table)
    assert list(out.columns) == ["invoices", "recovery rate", "at risk"]
    assert out.loc["a"].tolist() == ["12,345", "43.1%", "1.50"]
    assert out.loc["b", "recovery rate"] == "–"
    grid = ra.readable_grid(pd.DataFrame({0: [0.25, float("nan")]}))
    assert grid[0].tolist() == ["25%", "–"]


def _labels(fig):
    return [(ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes]


def test_figures_have_titles_labels_and_save_png(four_invoices, cycles, outcomes, tmp_path):
    follow_ups = ra.follow_up_attempts(four_invoices, cycles)
    figures = {
        "rates": ra.plot_recovery_by(ra.recovery_by(cycles, "processor"), 14),
        "number": ra.plot_retry_success(ra.retry_success_by_number(follow_ups)),
        "week": ra.plot_hour_of_week(
            ra.hour_of_week(follow_ups, "merchant", "success_rate"),
            "Retry success",
            "rate (%)",
            percent=True,
        ),
        "curves": ra.plot_recovery_curves(ra.recovery_curves(cycles, min_invoices=1)),
        "messages": ra.plot_message_grid(
            ra.response_by_send_hour(outcomes, min_sent=1), "Click rate"
        ),
        "revenue": ra.plot_revenue(ra.revenue_at_risk(cycles)),
    }
    for name, fig in figures.items():
        main = fig.axes[0]
        assert main.get_title() or fig.get_suptitle(), name
        assert main.get_xlabel() or name == "revenue", name
        assert main.get_ylabel(), name
        path = tmp_path / "sub" / f"{name}.png"
        assert ra.save_figure(fig, path) is fig
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "%" in figures["rates"].axes[0].get_xlabel()
    assert "days" in figures["curves"].axes[0].get_xlabel()
    assert "EUR" in figures["revenue"].axes[0].get_ylabel()


def test_plot_writes_png_when_given_save_to(cycles, tmp_path):
    path = tmp_path / "revenue.png"
    ra.plot_revenue(ra.revenue_at_risk(cycles), save_to=path)
    assert path.stat().st_size > 1000


def test_project_path_falls_back_to_the_project_root(tmp_path):
    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    (root / "data" / "history").mkdir(parents=True)
    (root / "dvc.yaml").write_text("stages: {}\n")
    here = root / "notebooks"
    assert ra.project_path("data/history", start=here) == root / "data" / "history"
    assert ra.project_path("reports/x", start=here) == root / "reports" / "x"
    assert ra.project_path(tmp_path, start=here) == tmp_path
