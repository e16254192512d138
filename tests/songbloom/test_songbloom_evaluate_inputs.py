"""songbloom.eval.lyrics and songbloom.eval.inputs: the sung text and section weights of a lyric string, the songs
JSONL with its one-line errors, generated samples, references from a folder or a lhotse manifest, dev metrics."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from shirabe.cli import InputError
from songbloom.eval.inputs import (
    find_samples,
    read_dev_metrics,
    read_songs_jsonl,
    references_from_dir,
    references_from_manifest,
)
from songbloom.eval.lyrics import section_symbols, sung_text

LYRICS = "[intro] [intro] . [verse] かえる . [inst] . [chorus] きこえる , うた ."


def test_sung_text_keeps_the_vocal_phrases():
    assert sung_text(LYRICS) == "かえる、きこえる、うた"
    assert sung_text("[intro] [intro] . [outro] .") == ""
    assert sung_text("かえるのうた\nきこえてくるよ") == "かえるのうた、きこえてくるよ"  # plain lines


def test_section_symbols_count_tags_phonemes_and_separators():
    # [intro] [intro] . | [verse] k a e r u . | [inst] . | [chorus] k I k o e r u , u t a .
    assert section_symbols(LYRICS) == [("[intro]", False, 3), ("[verse]", True, 7), ("[inst]", False, 2),
                                       ("[chorus]", True, 13)]


def write_jsonl(path, lines):
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n"
                            for line in lines), encoding="utf-8")
    return path


def test_songs_jsonl_is_read_with_relative_prompts(tmp_path):
    path = write_jsonl(tmp_path / "songs.jsonl", [{"idx": "a", "lyrics": LYRICS, "prompt_wav": "prompts/a.wav"}, "",
                                                  {"idx": "b", "lyrics": "[verse] うた .", "prompt_wav": "/p/b.wav"}])
    items = read_songs_jsonl(path)
    assert [(i.idx, i.prompt_wav, i.where) for i in items] == [("a", tmp_path / "prompts" / "a.wav", f"{path}:1"),
                                                               ("b", Path("/p/b.wav"), f"{path}:3")]


@pytest.mark.parametrize("line, message", [
    ({"idx": "b", "prompt_wav": "b.wav"}, ":2: missing field 'lyrics'"),
    ({"idx": "b", "lyrics": "うた", "prompt_wav": 3}, ":2: field 'prompt_wav' must be a non-empty string, got 3"),
    ({"idx": "a", "lyrics": "うた", "prompt_wav": "b.wav"}, ":2: idx 'a' already used at "),
    ("[1, 2]", ":2: expected a JSON object with idx, lyrics, prompt_wav, got list"),
    ('{"idx": "b",', ":2: not JSON ("),
])
def test_songs_jsonl_errors_name_the_line_and_field(tmp_path, line, message):
    path = write_jsonl(tmp_path / "songs.jsonl", [{"idx": "a", "lyrics": "うた", "prompt_wav": "a.wav"}, line])
    with pytest.raises(InputError) as e:
        read_songs_jsonl(path)
    assert str(e.value).startswith(f"{path}{message}")
    assert "\n" not in str(e.value)


def test_empty_or_missing_jsonl(tmp_path):
    with pytest.raises(InputError, match="no songs"):
        read_songs_jsonl(write_jsonl(tmp_path / "empty.jsonl", [""]))
    with pytest.raises(InputError, match="no such songs JSONL"):
        read_songs_jsonl(tmp_path / "absent.jsonl")


def test_samples_are_found_by_index(tmp_path):
    for name in ("a_s0.wav", "a_s2.wav", "a_b_s0.wav", "a_s1.txt", "ab_s0.wav"):
        (tmp_path / name).write_bytes(b"x")
    found, missing = find_samples(tmp_path, "a")
    assert found == {0: tmp_path / "a_s0.wav", 2: tmp_path / "a_s2.wav"} and missing == []
    assert find_samples(tmp_path, "a", expected=4)[1] == [1, 3]
    assert find_samples(tmp_path, "zz", expected=1) == ({}, [0])


def test_references_from_a_folder_and_a_manifest(tmp_path):
    from lhotse import Recording, RecordingSet

    for idx in ("a", "b"):
        sf.write(tmp_path / f"{idx}.wav", np.zeros(4800, dtype=np.float32), 48000)
    assert references_from_dir(tmp_path, ["a", "b", "c"]) == {"a": tmp_path / "a.wav", "b": tmp_path / "b.wav"}
    manifest = tmp_path / "songs_recordings_test.jsonl.gz"
    RecordingSet.from_recordings([Recording.from_file(tmp_path / "a.wav", recording_id="a"),
                                  Recording.from_file(tmp_path / "b.wav", recording_id="b")]).to_file(manifest)
    assert references_from_manifest(manifest, ["b", "c"]) == {"b": tmp_path / "b.wav"}
    with pytest.raises(InputError, match="no such reference directory"):
        references_from_dir(tmp_path / "absent", ["a"])


def test_dev_metrics_are_numbers(tmp_path):
    path = tmp_path / "dev.json"
    path.write_text('{"sketch_accuracy": 0.41, "flow_loss": 1.5e-1, "songs": 3}', encoding="utf-8")
    metrics = read_dev_metrics(path)
    assert metrics == {"sketch_accuracy": 0.41, "flow_loss": 0.15, "songs": 3} and isinstance(metrics["songs"], int)
    path.write_text('{"sketch_accuracy": 0.41, "flow_loss": "low"}', encoding="utf-8")
    with pytest.raises(InputError, match=r"dev.json: key 'flow_loss': expected a finite number, got 'low'"):
        read_dev_metrics(path)
    path.write_text("[0.4]", encoding="utf-8")
    with pytest.raises(InputError, match="expected a JSON object of numbers, got list"):
        read_dev_metrics(path)
