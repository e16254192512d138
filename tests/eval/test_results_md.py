"""RESULTS.md sections: appended once, replaced in place on re-runs, other text kept."""

from shirabe.eval.results_md import read_section, upsert_section


def test_sections_are_replaced_not_duplicated(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text("# My results\n\nhand-written notes\n", encoding="utf-8")
    upsert_section(path, "evaluate:a", "## A\n\n| x |\n|---|\n| 1 |")
    upsert_section(path, "study", "## Study\n\nfirst")
    upsert_section(path, "evaluate:a", "## A\n\n| x |\n|---|\n| 2 |")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# My results\n\nhand-written notes\n")
    assert text.count("<!-- begin: evaluate:a -->") == 1 and "| 1 |" not in text and "| 2 |" in text
    assert text.index("evaluate:a") < text.index("begin: study")  # replaced in place, order kept
    assert read_section(path, "study") == "## Study\n\nfirst"
    assert read_section(path, "missing") is None


def test_new_file_gets_a_header(tmp_path):
    path = upsert_section(tmp_path / "sub" / "RESULTS.md", "k", "body")
    assert path.read_text(encoding="utf-8").startswith("# Results")
    assert read_section(path, "k") == "body"
