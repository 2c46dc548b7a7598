from tara.core.stages.rag.documents import read_document, spell_out_tables

RATES = """# Rates

| bike | per hour | per day |
|---|:---:|---|
| City bike (3 gears) | 6 euros | 22 euros |
| Tandem | 12 euros | |

A day means 9 hours."""


def test_a_wide_table_is_spelled_out_row_by_row_with_its_column_names():
    assert spell_out_tables(RATES) == (
        "# Rates\n\nCity bike (3 gears), per hour: 6 euros; per day: 22 euros.\nTandem, per hour: 12 euros.\n\n"
        "A day means 9 hours."
    )


def test_a_two_column_table_and_text_that_only_looks_like_one_stay_as_they_are():
    prices = "| treatment | price |\n|---|---|\n| Crown | 650 pounds |"
    assert spell_out_tables(prices) == prices
    no_rule = "| a | b | c |\n| 1 | 2 | 3 |"
    assert spell_out_tables(no_rule) == no_rule


def test_a_row_with_more_or_fewer_cells_than_the_header_is_kept_whole():
    ragged = "| a | b | c |\n|---|---|---|\n| 1 | 2 |"
    assert spell_out_tables(ragged) == "| 1 | 2 |"


def test_markdown_files_are_read_with_their_tables_spelled_out_and_text_files_as_written(tmp_path):
    (tmp_path / "rates.md").write_text(RATES)
    (tmp_path / "rates.txt").write_text(RATES)
    assert "Tandem, per hour: 12 euros." in read_document(tmp_path / "rates.md", tmp_path).text
    assert read_document(tmp_path / "rates.txt", tmp_path).text == RATES
