"""Specification: what a recommendation must say to be accepted."""

import copy
from datetime import date, timedelta

import pytest

from shared import regions
from shared.documents import DocumentRejected, NotInJurisdiction, check_recommendation
from tests.support.offices import OfficeSigner, example


def payload(office: str = "bawaslu-36.01", **changes) -> dict:
    document = OfficeSigner(office).payload(copy.deepcopy(example()))
    document["recommendation"].update(changes)
    return document


def subject_with_nip(nip: str) -> dict:
    return {**example()["subject"], "nip": nip}


@pytest.mark.parametrize(
    "nip",
    ["198503122010011002", "199001152015032001", "196512311990121001"],
)
def test_a_real_nip_is_accepted(nip):
    check_recommendation(payload(subject=subject_with_nip(nip)))


@pytest.mark.parametrize(
    ("nip", "why"),
    [
        ("19850312201001100", "18 digits"),
        ("1985031220100110021", "18 digits"),
        ("19850312201001100X", "18 digits"),
        ("198502292010011002", "birth date"),  # 1985 was no leap year
        ("198503122010001002", "appointment month"),
        ("198503122010013002", "sex"),
        ("198503121980011002", "after the birth date"),
        ("200001012099011002", "future"),
    ],
)
def test_an_invalid_nip_is_refused_with_the_reason(nip, why):
    with pytest.raises(DocumentRejected) as refused:
        check_recommendation(payload(subject=subject_with_nip(nip)))

    assert refused.value.errors[0]["field"] == "recommendation.subject.nip"
    assert why in refused.value.errors[0]["message"]


def test_a_province_office_may_write_about_any_regency_of_its_province():
    check_recommendation(payload("bawaslu-36", region_code="36.72"))


def test_a_regency_office_may_not_write_about_its_neighbour():
    with pytest.raises(NotInJurisdiction):
        check_recommendation(payload("bawaslu-36.01", region_code="36.02"))


def test_the_national_office_does_not_start_recommendations():
    with pytest.raises(NotInJurisdiction):
        check_recommendation(payload("bawaslu-ri"))


def test_every_problem_is_listed_at_once():
    tomorrow = (date.today() + timedelta(days=2)).isoformat()

    with pytest.raises(DocumentRejected) as refused:
        check_recommendation(payload(category="nope", occurred_on=tomorrow, region_code="99.99"))

    fields = {error["field"] for error in refused.value.errors}
    assert {"recommendation.category", "recommendation.occurred_on"} <= fields
    assert "recommendation.region_code" in fields


def test_offices_and_regions_come_from_the_kemendagri_table():
    assert len(regions.provinces()) == 38
    assert sum(len(regions.regencies(p.code)) for p in regions.provinces()) == 514
    pandeglang = regions.office("bawaslu-36.01")
    assert pandeglang.tier is regions.Tier.regency
    assert pandeglang.name == "Bawaslu Kabupaten Pandeglang"
    assert regions.office("bawaslu-36").tier is regions.Tier.province
    assert regions.office("bawaslu-ri").tier is regions.Tier.national
    assert regions.office("bawaslu-36.99") is None
    assert regions.office("bawaslu-3601") is None
