"""Table and column names come from text alone: ASCII snake_case, short, unique."""

from __future__ import annotations

import random
import re

import pytest

from tap_oktopost.names import (
    MAX_NAME_LENGTH,
    METADATA_NAMES,
    column_names,
    table_name,
    text_hash,
)

NAME = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")

# Characters of many scripts, and some that transliterate to nothing.
ALPHABETS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "àáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿßŁłŒœ",
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГД",
    "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔ",
    "投稿点击率活动日期时间报告网络参与",
    "ابتثجحخدذرزسشصضطظعغفقكلمنهوي",
    "אבגדהוזחטיכלמנסעפצקרשת",
    "नमस्तेकखगघचछजझटठडढणतथदधनपफबभम",
    "😀🎉🚀📈👍❤️🇩🇪",
    " _-.,;:!?()[]{}%/\\|'\"#@&*+=<>~`^$\t",
]


def random_text(rng: random.Random) -> str:
    alphabet = "".join(rng.sample(ALPHABETS, rng.randint(1, 3)))
    length = rng.choice([0, 1, 2, 5, 12, 30, 64, 120, 300])
    return "".join(rng.choice(alphabet) for _ in range(length))


def random_header(rng: random.Random) -> list[str]:
    cells = [random_text(rng) for _ in range(rng.randint(1, 40))]
    # Headers repeat cells, differ only in case, or name metadata columns.
    for _ in range(rng.randint(0, 3)):
        cell = rng.choice(cells)
        cells.append(rng.choice([cell, cell.upper(), cell.title(), "Export ID"]))
    rng.shuffle(cells)
    return cells


@pytest.mark.parametrize("seed", range(40))
def test_random_headers_give_short_unique_ascii_names(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    header = random_header(rng)
    names = column_names(header)
    assert len(names) == len(header)
    for name in names:
        assert len(name) <= MAX_NAME_LENGTH
        assert NAME.fullmatch(name), name
    assert len(set(names)) == len(names)
    assert not set(names) & set(METADATA_NAMES)
    assert column_names(list(header)) == names


@pytest.mark.parametrize("seed", range(40))
def test_a_header_text_names_its_column_wherever_it_stands(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    header = list(dict.fromkeys(random_header(rng)))  # distinct cells
    named = dict(zip(header, column_names(header), strict=True))
    shuffled = rng.sample(header, len(header))
    assert dict(zip(shuffled, column_names(shuffled), strict=True)) == named
    # A cell no other cell of its header competes with is named as when alone.
    alone = {cell: column_names([cell])[0] for cell in header}
    for cell, name in named.items():
        if list(alone.values()).count(alone[cell]) == 1:
            assert name == alone[cell]


def test_same_text_same_name_and_different_texts_different_names() -> None:
    assert column_names(["Clicks"]) == column_names(["Other", "Clicks"])[1:]
    assert column_names(["clicks", "Clicks"]) == [
        "clicks",
        f"clicks_{text_hash('Clicks')}",
    ]
    assert column_names(["Clicks", "clicks"]) == [
        f"clicks_{text_hash('Clicks')}",
        "clicks",
    ]


def test_column_names_are_cleaned_unique_and_never_empty() -> None:
    header = ["\ufeffPost ID", "Clicks", "Clicks", "", "Export ID", " Rate (%) ", ""]
    empty = f"column_{text_hash('')}"
    assert column_names(header) == [
        "post_id",
        "clicks",
        "clicks_2",
        empty,
        f"export_id_{text_hash('Export ID')}",
        "rate",
        f"{empty}_2",
    ]


def test_headers_in_other_scripts_are_transliterated() -> None:
    assert column_names(["投稿", "Grüße", "Привет мир", "Café"]) == [
        "tougao",
        "grusse",
        "privet_mir",
        "cafe",
    ]


def test_a_header_with_no_ascii_reading_is_named_by_a_hash_of_its_text() -> None:
    names = column_names(["%", "()", "%"])
    assert names == [
        f"column_{text_hash('%')}",
        f"column_{text_hash('()')}",
        f"column_{text_hash('%')}_2",
    ]
    assert column_names(["()"]) == [f"column_{text_hash('()')}"]


def test_long_names_are_cut_to_63_characters_with_a_hash_of_the_text() -> None:
    first, second = "Engagement " * 10, "Engagement " * 10 + "!"
    names = column_names([first, second])
    assert [len(name) for name in names] == [63, 63]
    assert names[0] != names[1]
    assert names[0].endswith(f"_{text_hash(first)}")
    assert names[0].startswith("engagement_engagement_")
    assert column_names([first]) == names[:1]


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        ("2026-11-27-Posts.csv", "posts"),
        ("reports/Post Stats.csv", "post_stats"),
        ("2026-11-27_Campaign Report.CSV", "campaign_report"),
        ("nested/deeper/Clicks by Network (%).csv", "clicks_by_network"),
        ("Café Stats.csv", "cafe_stats"),
        ("2026-11-27.csv", "2026_11_27"),
        ("投稿.csv", "tougao"),
        ("2026-11-27-投稿.csv", "tougao"),
        ("%.csv", f"table_{text_hash('%')}"),
        ("reports/", None),
        ("summary.pdf", None),
        ("Posts.csv.txt", None),
    ],
)
def test_table_names(member: str, expected: str | None) -> None:
    assert table_name(member) == expected


def test_a_long_table_name_is_the_same_for_every_run_date() -> None:
    stem = "Weekly Engagement Report by Network and Campaign and Region and Team"
    name = table_name(f"2026-11-27-{stem}.csv")
    assert name is not None
    assert len(name) == MAX_NAME_LENGTH
    assert name == table_name(f"2026-12-04 {stem}.csv")
    assert name.endswith(text_hash(stem))
