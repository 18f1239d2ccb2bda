"""The status lifecycle (DESIGN §4), read from the one table the code runs on."""

from datetime import date, timedelta
from itertools import product
from typing import Any

import pytest

from shared.lifecycle import (
    FINAL,
    SANCTION_TYPES,
    TRANSITIONS,
    Action,
    Actor,
    InvalidDetails,
    SanctionKind,
    Status,
    TransitionRefused,
    add_working_days,
    allowed_actions,
    check_details,
    is_working_day,
    next_status,
    table_markdown,
)
from shared.regions import Tier

TABLE = {(row.source, row.action, row.actor): row.target for row in TRANSITIONS}
NOT_IN_TABLE = [key for key in product(Status, Action, Actor) if key not in TABLE]
TODAY = date(2024, 10, 1)

VALID_DETAILS: dict[Action, dict[str, Any]] = {
    Action.return_: {"reason": "The NIP does not match the attached decree."},
    Action.recommend: {
        "sanction": {"kind": "discipline", "type": "demotion_12m"},
        "ppk": {"title": "Bupati Pandeglang", "agency": "Pemerintah Kabupaten Pandeglang"},
    },
    Action.record_follow_up: {"decree_number": "800/123/BKPSDM/2024", "decided_on": "2024-09-30"},
}


def fields_of(error: InvalidDetails) -> list[str]:
    return [item["field"] for item in error.errors]


@pytest.mark.parametrize("row", TRANSITIONS, ids=lambda row: f"{row.source}-{row.action}")
def test_every_transition_in_the_table_is_taken_by_its_tier(row: Any) -> None:
    assert next_status(row.source, row.action, row.actor) is row.target
    assert row.action in allowed_actions(row.source, row.actor)


@pytest.mark.parametrize(("status", "action", "actor"), NOT_IN_TABLE)
def test_every_move_not_in_the_table_is_refused_with_the_allowed_actions(
    status: Status, action: Action, actor: Actor
) -> None:
    with pytest.raises(TransitionRefused) as refused:
        next_status(status, action, actor)
    assert refused.value.allowed == allowed_actions(status, actor)
    assert all(isinstance(allowed, Action) for allowed in refused.value.allowed)


def test_only_the_province_may_verify_a_submitted_recommendation() -> None:
    assert next_status(Status.submitted, Action.verify, Actor.province) is Status.verified
    with pytest.raises(TransitionRefused) as refused:
        next_status(Status.submitted, Action.verify, Actor.national)
    assert "province tier" in refused.value.message
    assert refused.value.allowed == []


def test_an_office_tier_is_accepted_where_an_actor_is_expected() -> None:
    assert next_status(Status.forwarded, Action.send, Tier.national) is Status.sent_to_ruling_body
    assert allowed_actions(Status.submitted, Tier.province) == [Action.verify, Action.return_]


def test_a_regency_office_takes_no_lifecycle_action() -> None:
    for status in Status:
        assert allowed_actions(status, Tier.regency) == []


def test_only_the_system_marks_a_recommendation_overdue() -> None:
    takers = {row.actor for row in TRANSITIONS if row.action is Action.mark_overdue}
    assert takers == {Actor.system}
    with pytest.raises(TransitionRefused) as refused:
        next_status(Status.sanction_recommended, Action.mark_overdue, Actor.national)
    assert "system tier" in refused.value.message
    assert refused.value.allowed == [Action.record_follow_up]


def test_an_action_from_the_wrong_status_says_it_cannot_be_taken_there() -> None:
    with pytest.raises(TransitionRefused) as refused:
        next_status(Status.verified, Action.return_, Actor.province)
    assert "cannot be taken" in refused.value.message
    assert refused.value.allowed == [Action.forward]


@pytest.mark.parametrize("status", sorted(FINAL))
def test_a_final_status_allows_nothing_to_anyone(status: Status) -> None:
    for actor in Actor:
        assert allowed_actions(status, actor) == []
    assert all(row.source != status for row in TRANSITIONS)


def test_every_status_but_a_final_one_has_a_way_forward() -> None:
    sources = {row.source for row in TRANSITIONS}
    assert sources == set(Status) - FINAL


def test_every_status_is_reachable_from_submitted() -> None:
    reached, frontier = {Status.submitted}, [Status.submitted]
    while frontier:
        current = frontier.pop()
        for row in TRANSITIONS:
            if row.source == current and row.target not in reached:
                reached.add(row.target)
                frontier.append(row.target)
    assert reached == set(Status)


def test_every_action_appears_in_the_table_with_exactly_one_tier() -> None:
    for action in Action:
        assert len({row.actor for row in TRANSITIONS if row.action is action}) == 1, action


def test_received_is_intakes_word_not_a_lifecycle_status() -> None:
    assert "received" not in {status.value for status in Status}


def test_return_is_spelled_return_on_the_wire() -> None:
    assert Action.return_ == "return"
    assert Action("return") is Action.return_


def test_the_markdown_table_prints_every_transition_in_order() -> None:
    lines = table_markdown().splitlines()
    assert lines[0] == "| from | action | tier | to |"
    rows = lines[2:]
    assert len(rows) == len(TRANSITIONS)
    for line, row in zip(rows, TRANSITIONS, strict=True):
        cells = [cell.strip(" `") for cell in line.strip("|").split("|")]
        assert cells == [row.source, row.action, row.actor, row.target]


@pytest.mark.parametrize("action", list(VALID_DETAILS))
def test_valid_details_are_accepted_and_normalised(action: Action) -> None:
    assert check_details(action, VALID_DETAILS[action], today=TODAY) == VALID_DETAILS[action]


@pytest.mark.parametrize("action", [action for action in Action if action not in VALID_DETAILS])
def test_an_action_without_details_takes_none(action: Action) -> None:
    assert check_details(action, None) == {}
    assert check_details(action, {}) == {}
    with pytest.raises(InvalidDetails) as invalid:
        check_details(action, {"reason": "anything"})
    assert fields_of(invalid.value) == ["details.reason"]


@pytest.mark.parametrize(
    ("action", "missing"),
    [
        (Action.return_, "reason"),
        (Action.recommend, "sanction"),
        (Action.recommend, "ppk"),
        (Action.record_follow_up, "decree_number"),
        (Action.record_follow_up, "decided_on"),
    ],
)
def test_each_required_detail_missing_is_refused_naming_the_field(
    action: Action, missing: str
) -> None:
    details = {key: value for key, value in VALID_DETAILS[action].items() if key != missing}
    with pytest.raises(InvalidDetails) as invalid:
        check_details(action, details, today=TODAY)
    assert fields_of(invalid.value) == [f"details.{missing}"]
    assert invalid.value.errors[0]["type"] == "missing"


@pytest.mark.parametrize("part", ["kind", "type"])
def test_a_sanction_without_kind_or_type_is_refused(part: str) -> None:
    sanction = {"kind": "ethics", "type": "open_statement"}
    del sanction[part]
    details = {**VALID_DETAILS[Action.recommend], "sanction": sanction}
    with pytest.raises(InvalidDetails) as invalid:
        check_details(Action.recommend, details)
    assert fields_of(invalid.value) == [f"details.sanction.{part}"]


@pytest.mark.parametrize("part", ["title", "agency"])
def test_the_ppk_needs_a_title_and_an_agency(part: str) -> None:
    ppk = {**VALID_DETAILS[Action.recommend]["ppk"], part: "   "}
    details = {**VALID_DETAILS[Action.recommend], "ppk": ppk}
    with pytest.raises(InvalidDetails) as invalid:
        check_details(Action.recommend, details)
    assert fields_of(invalid.value) == [f"details.ppk.{part}"]


def test_a_discipline_sanction_type_under_the_ethics_kind_is_refused() -> None:
    details = {
        **VALID_DETAILS[Action.recommend],
        "sanction": {"kind": "ethics", "type": "dismissal"},
    }
    with pytest.raises(InvalidDetails) as invalid:
        check_details(Action.recommend, details)
    assert fields_of(invalid.value) == ["details.sanction.type"]
    assert invalid.value.errors[0]["type"] == "sanction_type_mismatch"


@pytest.mark.parametrize(
    ("kind", "sanction_type"),
    [(kind, sanction_type) for kind, types in SANCTION_TYPES.items() for sanction_type in types],
)
def test_every_sanction_type_is_accepted_under_its_own_kind(
    kind: SanctionKind, sanction_type: str
) -> None:
    details = {
        **VALID_DETAILS[Action.recommend],
        "sanction": {"kind": kind.value, "type": sanction_type},
    }
    assert check_details(Action.recommend, details)["sanction"]["type"] == sanction_type


def test_an_unknown_sanction_kind_is_refused() -> None:
    details = {**VALID_DETAILS[Action.recommend], "sanction": {"kind": "criminal", "type": "x"}}
    with pytest.raises(InvalidDetails) as invalid:
        check_details(Action.recommend, details)
    assert "details.sanction.kind" in fields_of(invalid.value)


def test_a_follow_up_decided_in_the_future_is_refused() -> None:
    details = {**VALID_DETAILS[Action.record_follow_up], "decided_on": "2024-10-02"}
    with pytest.raises(InvalidDetails) as invalid:
        check_details(Action.record_follow_up, details, today=TODAY)
    assert fields_of(invalid.value) == ["details.decided_on"]
    assert invalid.value.errors[0]["type"] == "date_in_future"


def test_a_follow_up_decided_today_is_accepted() -> None:
    details = {**VALID_DETAILS[Action.record_follow_up], "decided_on": TODAY.isoformat()}
    checked = check_details(Action.record_follow_up, details, today=TODAY)
    assert checked["decided_on"] == "2024-10-01"


def test_without_a_given_today_tomorrow_in_eastern_indonesia_is_still_the_future() -> None:
    in_two_days = (date.today() + timedelta(days=2)).isoformat()
    details = {**VALID_DETAILS[Action.record_follow_up], "decided_on": in_two_days}
    with pytest.raises(InvalidDetails):
        check_details(Action.record_follow_up, details)


@pytest.mark.parametrize("decided_on", ["20240930", "30/09/2024", "2024-09-31", 1727654400])
def test_a_decision_date_must_be_an_iso_date(decided_on: Any) -> None:
    details = {**VALID_DETAILS[Action.record_follow_up], "decided_on": decided_on}
    with pytest.raises(InvalidDetails) as invalid:
        check_details(Action.record_follow_up, details, today=TODAY)
    assert fields_of(invalid.value) == ["details.decided_on"]


@pytest.mark.parametrize(
    ("action", "field", "limit"),
    [
        (Action.return_, "reason", 2000),
        (Action.record_follow_up, "decree_number", 100),
    ],
)
def test_text_details_have_a_length_limit(action: Action, field: str, limit: int) -> None:
    at_limit = {**VALID_DETAILS[action], field: "x" * limit}
    assert check_details(action, at_limit, today=TODAY)[field] == "x" * limit
    with pytest.raises(InvalidDetails) as invalid:
        check_details(action, {**at_limit, field: "x" * (limit + 1)}, today=TODAY)
    assert fields_of(invalid.value) == [f"details.{field}"]


def test_text_details_are_trimmed() -> None:
    checked = check_details(Action.return_, {"reason": "  Wrong office.  "})
    assert checked == {"reason": "Wrong office."}


def test_unknown_details_are_refused() -> None:
    details = {**VALID_DETAILS[Action.return_], "nip": "198001012005011001"}
    with pytest.raises(InvalidDetails) as invalid:
        check_details(Action.return_, details)
    assert fields_of(invalid.value) == ["details.nip"]


def test_refused_details_never_echo_the_values_sent() -> None:
    secret = "198001012005011001 Budi Santoso"
    details = {
        "sanction": {"kind": secret, "type": secret},
        "ppk": {"title": secret * 100, "agency": 42},
    }
    with pytest.raises(InvalidDetails) as invalid:
        check_details(Action.recommend, details)
    assert secret not in repr(invalid.value.errors)
    assert "Budi" not in str(invalid.value)
    assert all(set(error) == {"field", "message", "type"} for error in invalid.value.errors)


def test_working_days_skip_weekends_and_start_the_day_after() -> None:
    friday = date(2024, 10, 4)
    assert add_working_days(friday, 1) == date(2024, 10, 7)
    assert add_working_days(friday, 5) == date(2024, 10, 11)


def test_seven_working_days_before_the_prophets_birthday_skip_the_holiday() -> None:
    # Monday 16 September 2024 was Maulid Nabi; the weekend before it is skipped too.
    friday = date(2024, 9, 13)
    assert add_working_days(friday, 7) == date(2024, 9, 25)


def test_election_day_2024_is_not_a_working_day() -> None:
    assert not is_working_day(date(2024, 2, 14))
    assert add_working_days(date(2024, 2, 13), 1) == date(2024, 2, 15)


def test_working_days_cross_the_new_year_holiday() -> None:
    assert add_working_days(date(2024, 12, 31), 1) == date(2025, 1, 2)


def test_extra_holidays_are_not_working_days() -> None:
    friday = date(2024, 10, 4)
    assert add_working_days(friday, 1, extra_holidays=frozenset({date(2024, 10, 7)})) == date(
        2024, 10, 8
    )


def test_zero_working_days_is_the_start_itself_and_negative_is_refused() -> None:
    assert add_working_days(date(2024, 10, 5), 0) == date(2024, 10, 5)
    with pytest.raises(ValueError):
        add_working_days(date(2024, 10, 5), -1)
