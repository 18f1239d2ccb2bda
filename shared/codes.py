"""Code tables of DESIGN §3: each code once, with its Indonesian label for user-facing text."""

from enum import StrEnum


class Source(StrEnum):
    finding = "finding"
    report = "report"


class ElectionKind(StrEnum):
    pemilu = "pemilu"
    pilkada = "pilkada"


class Category(StrEnum):
    social_media_campaign = "social_media_campaign"
    partisan_activity = "partisan_activity"
    partisan_photo = "partisan_photo"
    declaration_attendance = "declaration_attendance"
    party_approach = "party_approach"
    campaign_props = "campaign_props"
    state_facility_use = "state_facility_use"
    open_support = "open_support"
    other = "other"


class Employment(StrEnum):
    pns = "pns"
    pppk = "pppk"


class PositionClass(StrEnum):
    jpt = "jpt"
    administrator = "administrator"
    pengawas = "pengawas"
    pelaksana = "pelaksana"
    fungsional = "fungsional"
    other = "other"


LABELS: dict[StrEnum, str] = {
    Source.finding: "Temuan",
    Source.report: "Laporan",
    ElectionKind.pemilu: "Pemilihan Umum",
    ElectionKind.pilkada: "Pemilihan Kepala Daerah",
    Category.social_media_campaign: "Kampanye di media sosial",
    Category.partisan_activity: "Kegiatan yang mengarah pada keberpihakan",
    Category.partisan_photo: "Foto bersama calon dengan simbol keberpihakan",
    Category.declaration_attendance: "Menghadiri deklarasi calon",
    Category.party_approach: "Pendekatan ke partai politik",
    Category.campaign_props: "Alat peraga kampanye",
    Category.state_facility_use: "Penggunaan fasilitas negara",
    Category.open_support: "Pernyataan dukungan terbuka",
    Category.other: "Lainnya",
    Employment.pns: "PNS",
    Employment.pppk: "PPPK",
    PositionClass.jpt: "Jabatan Pimpinan Tinggi",
    PositionClass.administrator: "Administrator",
    PositionClass.pengawas: "Pengawas",
    PositionClass.pelaksana: "Pelaksana",
    PositionClass.fungsional: "Fungsional",
    PositionClass.other: "Lainnya",
}
