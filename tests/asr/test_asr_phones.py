"""Reference phones of a text and the phone table."""

from __future__ import annotations

import pytest

from shirabe.asr.phones import (
    BLANK,
    TextPhones,
    UnknownPhoneError,
    inventory,
    phone_ids,
    phone_table,
    read_phone_table,
)
from shirabe.cli import InputError
from shirabe.text.frontend import JapaneseFrontend


@pytest.fixture(scope="module")
def to_phones():
    return TextPhones()


def test_phones_of_a_text(to_phones):
    assert to_phones("箸が折れた。") == "h a sh i g a o r e t a".split()


def test_devoiced_vowels_are_folded_and_pauses_dropped(to_phones):
    raw = JapaneseFrontend("phone")("はい、学生です。")
    assert "_" in raw and "U" in raw  # OpenJTalk pauses at the comma and devoices the u of 学/す
    assert to_phones("はい、学生です。") == "h a i g a k u s e e d e s u".split()


def test_table_has_the_blank_first_and_every_phone():
    table = phone_table()
    assert table.token2id[BLANK] == 0
    assert len(table) == 1 + len(inventory())
    for p in ("a", "N", "cl", "sh", "ts", "ky"):
        assert p in table
    for p in ("I", "U", "_", "pau"):
        assert p not in table


def test_unknown_phones_are_named(to_phones):
    table = phone_table(["a", "i", "k"])
    assert phone_ids(table, ["k", "a", "i"], "x") == [3, 1, 2]
    with pytest.raises(UnknownPhoneError, match=r"list\.tsv:3: phone\(s\) not in phones\.txt: 'sh' 'o'"):
        phone_ids(table, to_phones("塩"), "list.tsv:3")  # shi o


def test_phone_table_round_trip_and_bad_tables(tmp_path):
    path = tmp_path / "phones.txt"
    phone_table(["a", "k"]).write(path)
    assert path.read_text(encoding="utf-8") == f"{BLANK}\t0\na\t1\nk\t2\n"
    assert read_phone_table(path).token2id == {BLANK: 0, "a": 1, "k": 2}
    path.write_text("a\t0\n<blk>\t1\n", encoding="utf-8")
    with pytest.raises(InputError, match="blank <blk> must have id 0"):
        read_phone_table(path)
    path.write_text("<blk>\t0\na\t2\n", encoding="utf-8")
    with pytest.raises(InputError, match="without gaps"):
        read_phone_table(path)
    with pytest.raises(InputError, match="no such phone table"):
        read_phone_table(tmp_path / "missing.txt")
