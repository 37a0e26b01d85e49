"""Drawing the exp show table: boxes, terminal fitting, csv and markdown."""

from __future__ import annotations

from datetime import datetime

import pytest

from exq.cli.render import (
    column_widths,
    fit_columns,
    render_csv,
    render_markdown,
    render_table,
    table_width,
)
from exq.engine.experiments.compare import Column, Row, Table, build_table


def params(max_features: int, ngrams: int) -> dict[str, dict[str, object]]:
    return {"params.yaml": {"featurize.max_features": max_features, "featurize.ngrams": ngrams}}


SEED_ROWS = [
    Row(
        "workspace",
        kind="workspace",
        params=params(5000, 3),
        metrics={"scores.json": {"auc": 0.56359}},
    ),
    Row(
        "master",
        "a" * 40,
        kind="baseline",
        params=params(1500, 2),
        metrics={"scores.json": {"auc": 0.5674}},
        created=datetime(2021, 2, 16, 9, 0),
    ),
    Row(
        "exp-80655",
        "b" * 40,
        "a" * 40,
        params=params(5000, 3),
        metrics={"scores.json": {"auc": 0.56359}},
    ),
    Row(
        "exp-63ee0",
        "c" * 40,
        "a" * 40,
        params=params(5000, 2),
        metrics={"scores.json": {"auc": 0.5515}},
    ),
    Row(
        "exp-9bf22",
        "d" * 40,
        "a" * 40,
        params=params(4000, 2),
        metrics={"scores.json": {"auc": 0.56448}},
    ),
    Row(
        "exp-bb55c",
        "e" * 40,
        "a" * 40,
        params=params(3000, 2),
        metrics={"scores.json": {"auc": 0.574619}},
        created=datetime(2021, 2, 17, 16, 6),
    ),
]

SEED_TABLE = """\
┏━━━━━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━┓
┃ Experiment    ┃     auc ┃ featurize.max_features ┃ featurize.ngrams ┃
┡━━━━━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━┩
│ workspace     │ 0.56359 │ 5000                   │ 3                │
│ master        │  0.5674 │ 1500                   │ 2                │
│ ├── exp-80655 │ 0.56359 │ 5000                   │ 3                │
│ ├── exp-63ee0 │  0.5515 │ 5000                   │ 2                │
│ ├── exp-9bf22 │ 0.56448 │ 4000                   │ 2                │
│ └── exp-bb55c │ 0.57462 │ 3000                   │ 2                │
└───────────────┴─────────┴────────────────────────┴──────────────────┘
"""


@pytest.mark.parametrize("width", [72, 80, 200])
def test_seed_table_exactly(width: int) -> None:
    assert render_table(build_table(SEED_ROWS, no_timestamp=True), width=width) == SEED_TABLE


ELIDED_52 = """\
┏━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━┳━━━━━━━━━┳━━━┓
┃ Experiment    ┃ Created      ┃     auc ┃ … ┃
┡━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━╇━━━━━━━━━╇━━━┩
│ workspace     │ -            │ 0.56359 │ … │
│ master        │ Feb 16, 2021 │  0.5674 │ … │
│ ├── exp-80655 │ -            │ 0.56359 │ … │
│ ├── exp-63ee0 │ -            │  0.5515 │ … │
│ ├── exp-9bf22 │ -            │ 0.56448 │ … │
│ └── exp-bb55c │ 04:06 PM     │ 0.57462 │ … │
└───────────────┴──────────────┴─────────┴───┘
"""


def test_trailing_columns_elided_to_fit() -> None:
    table = build_table(SEED_ROWS, now=datetime(2021, 2, 17, 18, 0))
    assert column_widths(table) == [13, 12, 7, 22, 16]
    assert table_width(column_widths(table)) == 86
    assert render_table(table, width=52) == ELIDED_52
    assert "…" not in render_table(table, width=86)
    narrower = render_table(table, width=85).splitlines()
    assert narrower[1] == "┃ Experiment    ┃ Created      ┃     auc ┃ featurize.max_features ┃ … ┃"
    assert {len(line) for line in narrower} == {71}


@pytest.mark.parametrize(
    ("widths", "max_width", "expected"),
    [
        ([10, 5, 5], 30, (3, False)),  # (12 + 7 + 7) + 4 borders = 30: fits exactly
        ([10, 5, 5], 29, (2, True)),  # (12 + 7 + 3 for "…") + 4 = 26
        ([10, 5, 5], 25, (1, True)),  # (12 + 3) + 3 = 18
        ([10, 5, 5], 18, (1, True)),
        ([10, 5, 5], 10, (1, True)),  # the Experiment column stays even when it overflows
        ([10], 5, (1, False)),  # nothing to elide
        ([], 10, (0, False)),
        ([4, 4, 4, 4], 29, (4, False)),
        ([4, 4, 4, 4], 28, (3, True)),
        ([4, 4, 4, 4], 25, (2, True)),
        ([4, 4, 4, 4], 19, (2, True)),
        ([4, 4, 4, 4], 18, (1, True)),
    ],
)
def test_fit_columns(widths: list[int], max_width: int, expected: tuple[int, bool]) -> None:
    assert fit_columns(widths, max_width) == expected


def test_fit_columns_keep() -> None:
    assert fit_columns([10, 5, 5, 5], 20, keep=2) == (2, True)


def test_markup_in_cells_is_not_interpreted() -> None:
    table = Table(
        [Column("Experiment", "experiment"), Column("v", "param", "p.yaml", "v")],
        [["[bold]x[/bold]", "[1, 2]"]],
    )
    assert render_table(table, width=40).splitlines()[3] == "│ [bold]x[/bold] │ [1, 2] │"


def test_color_makes_baseline_bold() -> None:
    table = build_table(SEED_ROWS[:2], no_timestamp=True)
    plain = render_table(table, width=80)
    colored = render_table(table, width=80, color=True)
    assert "\x1b[" not in plain
    assert "\x1b[1m" in colored


def test_markdown_like_dvc() -> None:
    table = build_table(SEED_ROWS[:3], now=datetime(2021, 2, 17, 18, 0))
    assert render_markdown(table) == (
        "| Experiment    | Created      | auc     | featurize.max_features   | featurize.ngrams   |\n"
        "|---------------|--------------|---------|--------------------------|--------------------|\n"
        "| workspace     | -            | 0.56359 | 5000                     | 3                  |\n"
        "| master        | Feb 16, 2021 | 0.5674  | 1500                     | 2                  |\n"
        "| └── exp-80655 | -            | 0.56359 | 5000                     | 3                  |\n"
    )


def test_markdown_escapes_pipes() -> None:
    table = Table([Column("Experiment", "experiment")], [["a|b"]])
    assert render_markdown(table) == "| Experiment   |\n|--------------|\n| a\\|b         |\n"


def test_csv_raw_values() -> None:
    rows = [
        Row(
            "workspace",
            kind="workspace",
            metrics={"m.json": {"auc": 0.574619, "flag": True}},
            params={"p.yaml": {"lst": [1, 2], "s": "a,b"}},
        ),
        Row(
            "exp-1",
            "b" * 40,
            "a" * 40,
            created=datetime(2021, 2, 17, 16, 6),
            parent="a" * 40,
            metrics={"m.json": {"auc": 2.0000000000000002e-07}},
        ),
    ]
    assert render_csv(build_table(rows, now=datetime(2021, 2, 17))) == (
        "Experiment,rev,typ,Created,parent,auc,flag,lst,s\n"
        'workspace,,workspace,,,0.574619,True,"[1, 2]","a,b"\n'
        f"exp-1,{'b' * 40},experiment,2021-02-17T16:06:00,{'a' * 40},2.0000000000000002e-07,,,\n"
    )


def test_csv_without_timestamp_and_with_state() -> None:
    rows = [Row("q", "c" * 40, kind="queued", state="queued", params={"p.yaml": {"x": 1}})]
    assert render_csv(build_table(rows, no_timestamp=True)) == (
        f"Experiment,rev,typ,parent,State,x\nq,{'c' * 40},queued,,queued,1\n"
    )


class CountingWidths(list[int]):
    """Column widths that count the items every slice of them copies."""

    copied = 0

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        got = super().__getitem__(index)
        if isinstance(index, slice):
            CountingWidths.copied += len(got)
        return got


@pytest.mark.parametrize("columns", [10, 1000, 20_000])
def test_fitting_columns_costs_their_number_not_its_square(columns: int) -> None:
    widths = CountingWidths([5] * columns)
    CountingWidths.copied = 0
    count, elided = fit_columns(widths, 80)
    assert (count, elided) == (9, True)  # 9 columns of 5 and the … column: 77 cells
    assert CountingWidths.copied <= columns


def rich_drawing(table: Table) -> str:
    """The table as rich draws it, for comparison with exq's direct drawing."""
    import io

    from rich import box
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    grid = RichTable(box=box.HEAVY_HEAD)
    for col in table.columns:
        grid.add_column(Text(col.header), justify=col.align, no_wrap=True, overflow="ellipsis")
    for line in table.rows:
        grid.add_row(*[Text(cell) for cell in line])
    out = io.StringIO()
    Console(file=out, width=10**6, color_system=None, legacy_windows=False).print(grid)
    return out.getvalue()


CELLS = ["", "a", "exp-1a2b3", "0.001", "1e-05", "日本語", "é", "├── x", " lead", "trail ", "-"]


@pytest.mark.parametrize("seed", range(40))
def test_wide_tables_are_drawn_as_rich_draws_them(seed: int) -> None:
    import random

    pick = random.Random(seed)
    ncols, nrows = pick.randint(1, 7), pick.randint(1, 5)
    columns = [
        Column(pick.choice(CELLS[1:]) + str(i), "param", align=pick.choice(["left", "right"]))
        for i in range(ncols)
    ]
    table = Table(columns, [[pick.choice(CELLS) for _ in columns] for _ in range(nrows)])
    assert render_table(table, width=10**6) == rich_drawing(table)


def test_a_table_of_many_thousand_params_is_drawn_whole() -> None:
    columns = [Column("Experiment", "experiment")]
    columns += [Column(f"k{i}", "param", align="right") for i in range(50_000)]
    rows = [["workspace", *map(str, range(50_000))]]
    drawn = render_table(Table(columns, rows), width=1 << 40).splitlines()
    assert len(drawn) == 5
    assert drawn[1].split("┃")[-2].strip() == "k49999"
    assert drawn[3].split("│")[-2].strip() == "49999"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "".join(chr(c) for c in range(0x20, 0x7F)),  # every printable ASCII character
        "metrics.json",
        "a\tb",  # a control character: rich counts it as none
        "\x1b[31mred",
        "Ünïcödé",
        "学習率",  # wide characters: two columns each
        "\u200b zero width",
    ],
)
def test_cell_len_counts_as_rich_does(text: str) -> None:
    from rich.cells import cell_len as rich_cell_len

    from exq.cli.render import cell_len

    assert cell_len(text) == rich_cell_len(text)
