"""The client's tables beside the orders (issue 29): the mapping's ``tables`` block, the readers'
checks of each table against the orders, one message naming the client's file, column, lines and
an example for each bad case, and the hand-over to notebook 08."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from helpers import paths
from helpers.report import exports
from helpers.report.mapping import load_mapping, mapping_as_dict, mapping_from_dict
from helpers.report.orders import open_tables, read_client_orders, read_client_tables, save_tables
from helpers.tables import DataValidationError

ORDERS = paths.DATASETS / "orders.csv"


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, pd.DataFrame, dict]:
    """The sample company's survey, campaign and loyalty exports, their mapping and its orders."""
    folder = tmp_path_factory.mktemp("beyond")
    mapping = exports.beyond_orders(folder)
    orders, notes = read_client_orders(ORDERS, load_mapping(mapping))
    return mapping, orders, notes


def _variant(sample, tmp_path: Path, edit_table=None, edit_mapping=None) -> tuple:
    """A copy of the sample's folder with one table or the mapping changed; (orders, notes)."""
    mapping, orders, _ = sample
    folder = tmp_path / "client"
    shutil.copytree(mapping.parent, folder)
    if edit_table:
        kind, change = edit_table
        spec = yaml.safe_load((folder / "mapping.yaml").read_text())["tables"][kind]
        sep = spec.get("delimiter", ",")
        path = folder / spec["file"]
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
        change(df)
        df.to_csv(path, sep=sep, index=False)
    if edit_mapping:
        raw = yaml.safe_load((folder / "mapping.yaml").read_text())
        edit_mapping(raw)
        (folder / "mapping.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    m = load_mapping(folder / "mapping.yaml")
    return orders, {"mapping": m, "as_of": "2025-12-31"}


def _problems(sample, tmp_path, **edits) -> list:
    orders, notes = _variant(sample, tmp_path, **edits)
    with pytest.raises(DataValidationError) as err:
        read_client_tables(orders, notes)
    return err.value.problems


def test_the_sample_tables_read_clean_and_match_the_company(sample):
    mapping, orders, notes = sample
    tables = read_client_tables(orders, notes)
    assert set(tables) == {"survey", "campaigns", "loyalty", "points"}
    nps = pd.read_csv(paths.DATASETS / "nps_responses.csv")
    assert len(tables["survey"]) == len(nps)
    assert tables["survey"]["score"].sum() == nps["score"].sum()
    sends = pd.read_csv(paths.DATASETS / "campaigns.csv")
    assert (tables["campaigns"]["arm"] == "holdout").sum() == (sends["group"] == "control").sum()
    assert tables["campaigns"]["cost"].sum() == pytest.approx(sends["send_cost"].sum())
    assert all(t.attrs["unmatched"] == 0 for t in tables.values())


def test_the_tables_travel_with_the_mapping_and_through_the_hand_over(sample, tmp_path):
    mapping, orders, notes = sample
    m = notes["mapping"]
    assert mapping_from_dict(mapping_as_dict(m)) == m
    tables = read_client_tables(orders, notes)
    handed = open_tables(orders, {**notes, "tables": save_tables(tables, tmp_path)})
    for kind, df in tables.items():
        pd.testing.assert_frame_equal(handed[kind], df)
        assert handed[kind].attrs == df.attrs


@pytest.mark.parametrize(
    "value, code", [("11", "above_max"), ("7.5", "unparsable"), ("-1", "below_min")]
)
def test_a_survey_score_outside_0_to_10_or_not_whole_is_refused(sample, tmp_path, value, code):
    def change(df):
        df.iloc[[3, 8], 2] = value

    (p,) = _problems(sample, tmp_path, edit_table=("survey", change))
    assert p.file == "survey_responses.csv" and p.column == "score" and p.rows == 2
    assert p.lines == (5, 10) and p.example == value
    assert exports.SURVEY_QUESTION in p


def test_an_arm_that_is_neither_sent_nor_holdout_is_refused(sample, tmp_path):
    def change(df):
        df.loc[[0, 5, 6], "Group"] = "Control B"

    (p,) = _problems(sample, tmp_path, edit_table=("campaigns", change))
    assert (p.file, p.column, p.code, p.rows) == ("campaign_sends.csv", "arm", "unknown_arm", 3)
    assert p.example == "Control B" and "'Group'" in p and "Holdout" in p


def test_send_dates_outside_the_orders_range_are_refused(sample, tmp_path):
    def change(df):
        df.loc[1, "Sent"] = "03.01.2026"
        df.loc[2, "Sent"] = "01.01.2019"

    (p,) = _problems(sample, tmp_path, edit_table=("campaigns", change))
    assert (p.column, p.code, p.rows, p.lines) == ("send_date", "outside_orders", 2, (3, 4))


def test_a_join_date_after_the_as_of_day_is_refused(sample, tmp_path):
    def change(df):
        df.loc[4, "Joined"] = "2026-02-01"

    (p,) = _problems(sample, tmp_path, edit_table=("loyalty", change))
    assert (p.file, p.column, p.code, p.lines) == (
        "loyalty_members.csv",
        "join_date",
        "after_as_of",
        (6,),
    )
    assert "2025-12-31" in p


def test_customers_matching_no_order_are_counted_and_refused_above_the_threshold(sample, tmp_path):
    def change(df):  # 10 % of the members are strangers
        n = len(df) // 10
        df.loc[: n - 1, "Member"] = [f"X{i}" for i in range(n)]

    def no_ledger(raw):  # the ledger's members would not match the changed list either
        raw["tables"].pop("points")

    (p,) = _problems(sample, tmp_path, edit_table=("loyalty", change), edit_mapping=no_ledger)
    assert (p.column, p.code) == ("customer_id", "unmatched") and "10%" in p and "5%" in p
    orders, notes = _variant(
        sample, tmp_path / "b", edit_table=("loyalty", change),
        edit_mapping=lambda raw: (raw.update(unmatched_customers=0.2), no_ledger(raw)),
    )  # fmt: skip
    tables = read_client_tables(orders, notes)
    assert tables["loyalty"].attrs["unmatched"] == len(tables["loyalty"]) // 10


def test_every_table_problem_is_listed_in_one_error(sample, tmp_path):
    def survey(df):
        df.iloc[0, 2] = "12"

    def arms(raw):  # the file says Holdout; the mapping now expects Control
        raw["tables"]["campaigns"]["arms"] = {"sent": ["Treatment"], "holdout": ["Control"]}

    orders, notes = _variant(sample, tmp_path, edit_table=("survey", survey), edit_mapping=arms)
    with pytest.raises(DataValidationError) as err:
        read_client_tables(orders, notes)
    assert [(p.file, p.code) for p in err.value.problems] == [
        ("survey_responses.csv", "above_max"),
        ("campaign_sends.csv", "unknown_arm"),
    ]


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda raw: raw["tables"].update(surveys=raw["tables"].pop("survey")),
         "unknown table 'surveys' in 'tables'; did you mean 'survey'?"),
        (lambda raw: raw["tables"]["survey"]["columns"].pop("score"),
         "'tables.survey': 'columns' must name the file's column for 'score'"),
        (lambda raw: raw["tables"]["loyalty"].update(file="members.xlsx"),
         "'tables.loyalty': file 'members.xlsx' not found"),
        (lambda raw: raw["tables"]["campaigns"].update(arms={"sent": ["A"], "holdout": ["a"]}),
         "names a value as both sent and holdout"),
        (lambda raw: raw["tables"]["survey"]["columns"].update(nps="NPS"),
         "unknown column 'nps'"),
        (lambda raw: raw.update(unmatched_customers=5), "'unmatched_customers' must be a share"),
    ],
)  # fmt: skip
def test_a_wrong_tables_block_is_refused_with_what_to_write(sample, tmp_path, edit, words):
    with pytest.raises(DataValidationError) as err:
        _variant(sample, tmp_path, edit_mapping=edit)
    assert words in str(err.value) and "mapping.yaml" in str(err.value)


def test_the_report_command_refuses_a_bad_table_before_writing_anything(sample, tmp_path, capsys):
    """A bad survey score through ``python -m helpers.report``: exit 2, the client's file,
    column and lines in one message, no traceback, no report folder."""
    from tests.report.clients import assert_nothing_left, cli_args, run_cli

    def change(df):
        df.iloc[6, 2] = "10+"

    _, notes = _variant(sample, tmp_path, edit_table=("survey", change))
    root = tmp_path / "reports"
    rc, _, err = run_cli(cli_args(ORDERS, tmp_path / "client" / "mapping.yaml", "acme", root),
                         capsys)  # fmt: skip
    assert rc == 2 and "Traceback" not in err
    assert "survey_responses.csv" in err and "line 8" in err and "'10+'" in err
    assert_nothing_left(root)


def test_comment_themes_come_from_the_languages_dictionary_or_the_consultants(sample, tmp_path):
    from helpers.report import beyond_orders
    from helpers.report.extra_tables import THEMES_FOLDER, theme_dictionary

    mapping, orders, notes = sample
    survey = read_client_tables(orders, notes)["survey"]
    langs = {p.stem for p in THEMES_FOLDER.glob("*.yaml")}
    assert langs == {"en", "nb", "pl", "nl", "ru"}
    shares = beyond_orders.comment_themes(survey, theme_dictionary(None, "en"))
    assert {"delivery", "price", "other"} <= set(shares.index)
    assert shares["n"].sum() == survey["comment"].notna().sum()
    assert (shares["ci_low"] <= shares["share"]).all() and (
        shares["share"] <= shares["ci_high"]
    ).all()
    own = tmp_path / "mine.yaml"
    own.write_text("coffee: [coffee, espresso]\nparcels: [parcel]\n")

    def use_own(raw):
        raw["tables"]["survey"]["themes"] = str(own)

    _, notes2 = _variant(sample, tmp_path / "own", edit_mapping=use_own)
    mine = beyond_orders.comment_themes(
        survey, theme_dictionary(notes2["mapping"].tables["survey"].themes, "en")
    )
    assert set(mine.index) <= {"coffee", "parcels", "other"}


def test_a_themes_file_that_is_not_a_dictionary_is_refused(sample, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- delivery\n- price\n")

    def use(raw):
        raw["tables"]["survey"]["themes"] = str(bad)

    with pytest.raises(DataValidationError) as err:
        _variant(sample, tmp_path / "b", edit_mapping=use)
    assert "themes file 'bad.yaml' must map each theme to a list of words" in str(err.value)


# --- the points ledger (issue 29, point 2) ------------------------------------------------------


def test_the_sample_ledger_reads_clean_and_sums_to_the_programmes_points(sample):
    mapping, orders, notes = sample
    ledger = read_client_tables(orders, notes)["points"]
    ev = pd.read_csv(paths.DATASETS / "loyalty_events.csv")
    for kind in ("earn", "redeem", "expire"):
        want = ev.loc[ev["event_type"] == kind, "points"].sum()
        assert ledger.loc[ledger["type"] == kind, "points"].sum() == pytest.approx(want), kind
    assert (ledger["points"] > 0).eq(ledger["type"] == "earn").all()  # signed by the type
    assert notes["mapping"].tables["points"].point_value == pytest.approx(0.01)


def _ledger_problem(sample, tmp_path, change) -> object:
    (p,) = _problems(sample, tmp_path, edit_table=("points", change))
    assert p.file == "loyalty_points.csv"
    return p


def test_redeeming_more_points_than_the_member_holds_is_refused(sample, tmp_path):
    def change(df):
        i = df.index[df["Type"].eq("Redeemed")][0]
        df.loc[i, "Points"] = "999999"

    p = _ledger_problem(sample, tmp_path, change)
    assert (p.column, p.code, p.rows, p.example) == ("points", "more_than_held", 1, "999999.0")
    assert "more points than the member holds" in p and "'Points'" in p


def test_a_points_movement_after_the_as_of_day_is_refused(sample, tmp_path):
    def change(df):
        df.loc[[2, 9], "Date"] = "2026-01-05 10:00:00"

    p = _ledger_problem(sample, tmp_path, change)
    assert (p.column, p.code, p.rows, p.lines) == ("date", "after_as_of", 2, (4, 11))
    assert "2025-12-31" in p


def test_points_of_a_customer_who_is_not_a_member_are_refused(sample, tmp_path):
    def change(df):  # one member's every movement under an id the member list does not have
        rows = df.index[df["Member"].eq(df.loc[0, "Member"])]
        df.loc[rows, "Member"] = "X-404"
        change.lines = tuple(int(i) + 2 for i in rows)

    p = _ledger_problem(sample, tmp_path, change)
    assert (p.column, p.code, p.example) == ("customer_id", "not_a_member", "X-404")
    assert p.lines == change.lines[: len(p.lines)] and p.lines[0] == 2
    assert "not in the loyalty table" in p


def test_a_points_type_the_mapping_does_not_name_is_refused(sample, tmp_path):
    def change(df):
        df.loc[5, "Type"] = "Bonus"

    p = _ledger_problem(sample, tmp_path, change)
    assert (p.column, p.code, p.example) == ("type", "unknown_type", "Bonus")
    assert "Redeemed" in p and "'types'" in p


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda raw: raw["tables"].pop("loyalty"), "'tables.points' needs 'tables.loyalty'"),
        (lambda raw: raw["tables"]["points"].update(point_value=-1), "'point_value' must be"),
        (lambda raw: raw["tables"]["points"].update(types={"bonus": ["B"]}), "'types' must map"),
        (lambda raw: raw["tables"]["survey"].update(point_value=0.01), "unknown key 'point_value'"),
    ],
)  # fmt: skip
def test_a_wrong_points_block_is_refused(sample, tmp_path, edit, words):
    with pytest.raises(DataValidationError) as err:
        _variant(sample, tmp_path, edit_mapping=edit)
    assert words in str(err.value)


def test_points_results_known_answer():
    """Two members: A earns 100 and redeems 60 a month later; B earns 50, which expire 13
    months later. At the as-of: 40 outstanding (worth 0.40 at 0.01), 60 redeemed, 50 expired,
    expired / earned = 1/3; of the points earned 50/150 expired and 60/150 were redeemed, the
    other 40 are open: the share never redeemed lies in [1/3, 90/150] (here every point is old
    enough, so the bounds are those shares; the bootstrap can only widen them)."""
    from helpers.report.beyond_orders import points_results

    t = pd.Timestamp("2024-01-01")
    ledger = pd.DataFrame({
        "customer_id": ["A", "A", "B", "B"],
        "date": [t, t + pd.Timedelta(days=31), t, t + pd.Timedelta(days=400)],
        "points": [100.0, -60.0, 50.0, -50.0], "type": ["earn", "redeem", "earn", "expire"],
    })  # fmt: skip
    r = points_results(ledger, "2025-12-31", 0.01, n_boot=50)
    assert (r["earned"], r["redeemed"], r["expired"], r["outstanding"]) == (150, 60, 50, 40)
    assert r["outstanding_value"] == pytest.approx(0.40) and r["holders"] == 1
    assert r["breakage_so_far"] == pytest.approx(1 / 3) and r["months"] == 24
    b = r["breakage"]
    assert b["estimate"] == pytest.approx(1 / 3) and b["open"] == pytest.approx(40 / 150)
    assert b["upper"] == pytest.approx(0.6)
    assert b["bound_low"] <= 1 / 3 and b["bound_high"] >= 0.6
    young = points_results(ledger.assign(date=pd.Timestamp("2025-12-20")), "2025-12-31")
    assert young["breakage"] is None and young["outstanding_value"] is None
