"""Table and column names come from text alone: ASCII snake_case, short, distinct.

A column's name is a function of its own header text: texts equal after case
folding, Latin accent stripping and treating space, `_`, `-` and `.` alike are one
column; any other difference (a symbol, another script) is another column. Each
class is generated with many seeded instances.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections import Counter

import pytest

from tap_oktopost.tables.names import (
    MAX_NAME_LENGTH,
    METADATA_NAMES,
    POSTGRESQL_RESERVED,
    RESERVED,
    SNOWFLAKE_RESERVED,
    SYMBOL_WORDS,
    EarlierNames,
    case_clashes,
    column_names,
    name_from_text,
    name_of,
    table_name,
    text_hash,
    text_key,
    with_suffix,
)

NAME = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")
HASHED = re.compile(r".*_[0-9a-f]{8}")

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
WORDS = [
    "post", "id", "clicks", "ctr", "engagement", "rate", "network", "date",
    "campaign", "name", "reach", "spend", "likes", "shares", "cost", "per", "lead",
]  # fmt: skip
SEPARATORS = [" ", "_", "-", "."]
# Latin letters and the letter they are once accents are stripped.
ACCENTED = {"e": "éèêë", "a": "áàâäå", "o": "óòôöõ", "u": "úùûü", "c": "ç", "n": "ñ"}
# Letters of other scripts whose transliteration is a Latin word.
OTHER_SCRIPTS = {
    "privet": "привет",
    "klik": "клик",
    "dianji": "点击",
    "kliki": "клики",
    "data": "дата",
    "alpha": "αλφα",
}


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


def plain_words(rng: random.Random) -> list[str]:
    return rng.sample(WORDS, rng.randint(1, 4))


def header_text(rng: random.Random) -> str:
    """A header as exports write them: words, maybe a symbol or bracketed unit."""
    words = plain_words(rng)
    if rng.random() < 0.5:
        symbol = rng.choice([*SYMBOL_WORDS, "/", "(", ")", "?", "!", "*"])
        words.insert(rng.randint(0, len(words)), rng.choice([symbol, f"({symbol})"]))
    return " ".join(words)


def variant(rng: random.Random, text: str) -> str:
    """The same column written otherwise: case, Latin accents, separators."""
    out = []
    for char in text:
        if char == " ":
            out.append(rng.choice(SEPARATORS) * rng.randint(1, 2))
        elif char in ACCENTED and rng.random() < 0.3:
            out.append(rng.choice(ACCENTED[char]))
        else:
            out.append(rng.choice([char.lower(), char.upper()]))
    edge = rng.choice(["", " ", "_", "\ufeff"])
    return edge + "".join(out) + rng.choice(["", " ", "-"])


def other_column(rng: random.Random, text: str) -> str:
    """A text that must be another column: a symbol added, or a word in another
    script transliterating to the same letters."""
    if rng.random() < 0.5:
        symbol = rng.choice([*SYMBOL_WORDS, "/", "(", ")", "?", ":", "'"])
        position = rng.randint(0, len(text))
        return text[:position] + symbol + text[position:]
    latin, script = rng.choice(list(OTHER_SCRIPTS.items()))
    return f"{text} {rng.choice([latin, script])}"


# -- Shape of every name ---------------------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_random_headers_give_short_unique_ascii_names(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    header = random_header(rng)
    names = column_names(header)
    assert len(names) == len(header)
    for name in names:
        assert len(name) <= MAX_NAME_LENGTH
        assert NAME.fullmatch(name), name
        assert name not in RESERVED
    assert len(set(names)) == len(names)
    assert not set(names) & set(METADATA_NAMES)
    assert column_names(list(header)) == names


# -- A name is a function of its own text ----------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_a_header_text_names_its_column_whatever_its_neighbours(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    cells = [random_text(rng) for _ in range(20)] + [
        header_text(rng) for _ in range(20)
    ]
    header = list({text_key(cell): cell for cell in cells}.values())  # distinct keys
    names = column_names(header)
    for cell, name in zip(header, names, strict=True):
        assert name == column_names([cell])[0] == name_of(cell)
    shuffled = rng.sample(header, len(header))
    assert dict(zip(shuffled, column_names(shuffled), strict=True)) == dict(
        zip(header, names, strict=True)
    )


@pytest.mark.parametrize("seed", range(30))
def test_texts_differing_in_case_accents_or_separators_are_one_column(
    seed: int,
) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    for _ in range(20):
        text = header_text(rng)
        other = variant(rng, text)
        assert name_of(other) == name_of(text), (text, other)
        # Both in one file: one column, the second a repeat of the first.
        assert column_names([text, other]) == [name_of(text), f"{name_of(text)}_2"]


@pytest.mark.parametrize("seed", range(30))
def test_texts_differing_in_a_symbol_or_script_are_other_columns(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    for _ in range(20):
        text = header_text(rng)
        other = other_column(rng, text)
        if text_key(other) == text_key(text):
            continue  # the symbol landed as a separator would
        assert name_of(other) != name_of(text), (text, other)
        assert column_names([text, other]) == [name_of(text), name_of(other)]


@pytest.mark.parametrize("seed", range(10))
def test_no_two_keys_share_a_name(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    texts = [random_text(rng) for _ in range(300)]
    texts += [header_text(rng) for _ in range(300)]
    texts += [other_column(rng, text) for text in texts[-300:]]
    keys_of: dict[str, set[str]] = {}
    for text in texts:
        keys_of.setdefault(name_of(text), set()).add(text_key(text))
    assert {name: keys for name, keys in keys_of.items() if len(keys) > 1} == {}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("CTR (%)", "CTR (#)"),
        ("Spend ($)", "Spend (€)"),
        ("Clicks", "Clicks?"),
        ("A & B", "A + B"),
        ("Rate %", "Rate pct"),
        ("Привет", "Privet"),
        ("点击", "Dianji"),
        ("ガ", "カ"),  # a mark that makes another letter, not an accent
        ("Kosten/Lead", "Kosten Lead"),
    ],
)
def test_the_issues_pairs_never_share_a_column(first: str, second: str) -> None:
    assert name_of(first) != name_of(second)
    neighbours = [["Post ID"], ["CTR"], ["ctr pct", "CTR (%)", "CTR (#)", "CTR"], []]
    pair = {text_key(first), text_key(second)}
    for others in neighbours:
        header = [*(o for o in others if text_key(o) not in pair), first, second]
        named = dict(zip(header, column_names(header), strict=True))
        assert (named[first], named[second]) == (name_of(first), name_of(second))


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Post ID", "post_id"),
        ("post_id", "post_id"),
        ("POST-ID", "post_id"),
        (" Post.ID ", "post_id"),
        ("\ufeffPost  ID", "post_id"),
        ("Café", "cafe"),
        ("CAFÉ", "cafe"),
        ("Grüße", "grusse"),
        ("Łódź Reach", "lodz_reach"),
        ("Æther", "aether"),
    ],
)
def test_plain_texts_are_named_as_written(text: str, name: str) -> None:
    assert name_of(text) == name


@pytest.mark.parametrize(
    ("text", "readable"),
    [
        ("CTR (%)", "ctr_pct"),
        ("CTR (#)", "ctr_num"),
        ("Spend ($)", "spend_dollar"),
        ("Spend €", "spend_eur"),
        ("Cost £", "cost_gbp"),
        ("R&D", "r_and_d"),
        ("Likes + Shares", "likes_plus_shares"),
        ("@mentions", "at_mentions"),
        ("Clicks > 10", "clicks_gt_10"),
        ("Rate (‰)", "rate_permille"),
        ("投稿", "tougao"),
        ("Привет мир", "privet_mir"),
        ("Clicks/Impressions", "clicks_impressions"),
    ],
)
def test_symbols_are_read_as_words_before_the_hash(text: str, readable: str) -> None:
    assert name_of(text) == f"{readable}_{text_hash(text_key(text))}"


def test_a_text_with_no_ascii_reading_is_named_by_a_hash_of_its_key() -> None:
    assert column_names(["()", "( )", "()"]) == [
        f"column_{text_hash('()')}",
        f"column_{text_hash('( )')}",
        f"column_{text_hash('()')}_2",
    ]
    assert name_of("") == f"column_{text_hash('')}"


@pytest.mark.parametrize("seed", range(10))
def test_long_names_are_cut_to_63_characters_with_a_hash(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    words = [rng.choice(WORDS) for _ in range(30)]
    text = " ".join(words)
    longer = f"{text} {rng.choice(WORDS)}"
    first, second = column_names([text, longer])
    assert MAX_NAME_LENGTH - 1 <= len(first) <= MAX_NAME_LENGTH  # no `__` at the cut
    assert MAX_NAME_LENGTH - 1 <= len(second) <= MAX_NAME_LENGTH
    assert first != second
    assert first == f"{'_'.join(words)[:54].rstrip('_')}_{text_hash(text)}"
    assert first == name_of(variant(rng, text))


def test_repeated_texts_are_numbered_after_plain_names() -> None:
    header = ["Clicks", "clicks", "Clicks 2", "CLICKS"]
    assert column_names(header) == ["clicks", "clicks_3", "clicks_2", "clicks_4"]


# -- Reserved words and the tap's own columns ------------------------------------------


def test_the_reserved_lists_hold_the_words_that_broke_loads() -> None:
    assert {"qualify", "case", "left", "right", "full", "true", "cast", "join"} <= (
        SNOWFLAKE_RESERVED
    )
    assert {"user", "offset", "limit", "default", "end"} <= POSTGRESQL_RESERVED


@pytest.mark.parametrize("word", sorted(RESERVED))
def test_a_reserved_word_gets_a_suffix_in_every_spelling(word: str) -> None:
    rng = random.Random(word)  # noqa: S311 - reproducible test data
    spellings = [word, word.upper(), word.title(), variant(rng, word.replace("_", " "))]
    for spelling in spellings:
        assert name_of(spelling) == f"{word}_col"
    # A header written as the suffixed name is another column.
    written = name_of(f"{word} col")
    assert written != f"{word}_col"
    assert HASHED.fullmatch(written)
    assert column_names([word.upper(), f"{word} col"]) == [f"{word}_col", written]
    assert table_name(f"2026-11-27-{word.title()}.csv") == f"{word}_table"
    assert table_name(f"{word} table.csv") != f"{word}_table"


@pytest.mark.parametrize("metadata", METADATA_NAMES)
def test_a_header_never_takes_a_column_of_the_tap(metadata: str) -> None:
    rng = random.Random(metadata)  # noqa: S311 - reproducible test data
    spellings = [metadata, metadata.upper(), metadata.replace("_", " ").title()]
    spellings.append(variant(rng, spellings[-1]))
    names = {name_of(spelling) for spelling in spellings}
    assert len(names) == 1
    assert not names & set(METADATA_NAMES)
    if not metadata.startswith("_"):  # `_sdc_...` written in a header reads `sdc_...`
        key = text_key(metadata)
        assert names == {with_suffix(metadata, text_hash(key))}
    assert column_names([*spellings, *METADATA_NAMES])[0] == name_of(metadata)


# -- Names a table already has ---------------------------------------------------------


def earlier_rule(header: list[str]) -> list[str]:
    """The naming of the releases before this one, to make states and catalogs
    of existing users: the cell written as the name (else the smallest text)
    keeps a clean name, others get a hash of their text, repeats `_2`..."""
    cells = [cell.lstrip("\ufeff") for cell in header]
    bases = [name_from_text(cell, "column") for cell in cells]
    owners: dict[str, str] = {}
    for cell, base in zip(cells, bases, strict=True):
        if base not in METADATA_NAMES and (
            base not in owners
            or (cell != base, cell) < (owners[base] != base, owners[base])
        ):
            owners[base] = cell
    occurrences: Counter[str] = Counter()
    wanted, plain = [], []
    for cell, base in zip(cells, bases, strict=True):
        occurrences[cell] += 1
        owned = owners.get(base) == cell
        name = base if owned else with_suffix(base, text_hash(cell))
        if occurrences[cell] > 1:
            name = with_suffix(name, str(occurrences[cell]))
        wanted.append(name)
        plain.append(owned and occurrences[cell] == 1)
    taken = set(METADATA_NAMES)
    names = list(wanted)
    for position in sorted(range(len(wanted)), key=lambda p: not plain[p]):
        name, count = wanted[position], 1
        while name in taken:
            count += 1
            name = with_suffix(wanted[position], str(count))
        taken.add(name)
        names[position] = name
    return names


def mixed_header(rng: random.Random) -> list[str]:
    """Headers whose earlier names differ from today's: symbols, scripts, case."""
    cells = [header_text(rng) for _ in range(rng.randint(2, 12))]
    cells += [other_column(rng, rng.choice(cells)) for _ in range(rng.randint(0, 4))]
    cells += [rng.choice(sorted(RESERVED)).title() for _ in range(rng.randint(0, 2))]
    cells += ["CTR (%)", "CTR (#)"][: rng.randint(0, 2)]
    unique = list(dict.fromkeys(cells))
    rng.shuffle(unique)
    # Blank cells (trailing commas) and a header written twice, as files have them.
    return unique + rng.choice([[], [""], ["", ""], [rng.choice(unique)]])


@pytest.mark.parametrize("seed", range(40))
def test_names_the_state_remembers_are_kept(seed: int) -> None:
    """An existing user's state holds the earlier names (without their texts):
    the same headers keep them, after an upgrade, at discovery and sync alike."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    header = mixed_header(rng)
    before = earlier_rule(header)
    remembered = EarlierNames(in_state=frozenset(before))
    assert column_names(header, remembered) == before
    # Meltano discovers before each sync: beside the state, a catalog of today's names.
    fresh = {
        name: {"description": cell}
        for cell, name in zip(header, column_names(header), strict=True)
    }
    assert column_names(header, EarlierNames.of_table(fresh, before)) == before
    # A new column added since is named by today's rule, beside the kept ones.
    added = f"Added {rng.choice(list(SYMBOL_WORDS))} {seed}"
    assert column_names([*header, added], remembered) == [*before, name_of(added)]


@pytest.mark.parametrize("seed", range(40))
def test_names_the_catalog_gives_a_header_text_are_kept(seed: int) -> None:
    """The catalog keeps each column's header text as its description."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    header = mixed_header(rng)
    before = earlier_rule(header)
    properties = {
        name: {"type": ["string", "null"], "description": cell}
        for cell, name in zip(header, before, strict=True)
    }
    catalog = EarlierNames.of_table(properties, in_state={})
    assert column_names(header, catalog) == before
    # Written with other case or separators, a text keeps its column too.
    respelt = [variant(rng, cell) for cell in header]
    assert column_names(respelt, catalog) == before
    # A new text whose name today is a catalog name of another text gets another.
    for cell, name in zip(header, before, strict=True):
        newcomer = name.replace("_", " ")
        if cell and text_key(newcomer) != text_key(cell) and name_of(newcomer) == name:
            (given,) = column_names([newcomer], catalog)
            assert given != name
            assert given == with_suffix(name, text_hash(text_key(newcomer)))


def test_the_state_wins_over_a_catalog_of_todays_names() -> None:
    """Meltano discovers before each run: after an upgrade its catalog holds
    today's names, and the state the names the tables have: those stay."""
    fresh = {name_of(text): {"description": text} for text in ["CTR (%)", "Привет"]}
    earlier = EarlierNames.of_table(fresh, in_state={"ctr", "privet"})
    assert column_names(["CTR (%)", "Привет"], earlier) == ["ctr", "privet"]
    # Without a state, the catalog's names.
    catalog = EarlierNames.of_table(fresh, in_state={})
    assert column_names(["Привет", "CTR (%)"], catalog) == [
        name_of("Привет"),
        name_of("CTR (%)"),
    ]
    # Once the state holds today's name (a table started after the upgrade), it stays.
    later = EarlierNames.of_table(fresh, in_state={"ctr", name_of("CTR (%)")})
    assert column_names(["CTR (%)"], later) == [name_of("CTR (%)")]


# -- Table names -----------------------------------------------------------------------


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
        ("Order.csv", "order_table"),
        ("2026-11-27-QUALIFY.csv", "qualify_table"),
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


# -- Stream names that differ only by case ---------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_stream_names_differing_only_by_case_are_found(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    names = sorted({"_".join(plain_words(rng)) for _ in range(10)})
    assert case_clashes(names) == []
    twin = rng.choice(names)
    upper = "".join(rng.choice([c.upper(), c]) for c in twin)
    if upper == twin:
        upper = twin.upper()
    assert case_clashes([*names, upper]) == [tuple(sorted([twin, upper]))]


def test_latin_accents_go_but_marks_of_other_scripts_stay() -> None:
    assert text_key("Ça-va_Été") == "ca va ete"
    decomposed = unicodedata.normalize("NFD", "ガ")
    assert text_key(decomposed) == "ガ"
    assert text_key("Й") == "й"
