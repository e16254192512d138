"""Label parsing, nothing-to-say errors, user dictionaries and their cache."""

import pytest

from shirabe.text import JapaneseFrontend, NoPronunciationError, UserDictError, compile_user_dict
from shirabe.text.openjtalk import Mora, parse_labels, user_dict_hash


def lab(phone, a=("xx", "xx", "xx"), f1="xx", e3="xx"):
    a1, a2, a3 = a
    return (f"xx^xx-{phone}+xx=xx/A:{a1}+{a2}+{a3}/B:xx-xx_xx/C:xx_xx+xx/D:xx+xx_xx"
            f"/E:xx_xx!{e3}_xx-xx/F:{f1}_xx#xx_xx@xx_xx|xx_xx/G:xx_xx%xx_xx_xx/H:xx_xx")


def test_parse_labels_groups_morae_and_pauses():
    # 橋, pause, え? : h a (-1,1,2) sh i (0,2,1) | pau | e (0,1,1), question
    labels = [
        lab("sil"),
        lab("h", ("-1", "1", "2"), "2"), lab("a", ("-1", "1", "2"), "2"),
        lab("sh", ("0", "2", "1"), "2"), lab("i", ("0", "2", "1"), "2"),
        lab("pau"),
        lab("e", ("0", "1", "1"), "1"),
        lab("sil", e3="1"),
    ]
    utt = parse_labels(labels)
    assert utt.items == [
        Mora(("h", "a"), -1, 1, 2, 2),
        Mora(("sh", "i"), 0, 2, 1, 2),
        None,
        Mora(("e",), 0, 1, 1, 1),
    ]
    assert utt.interrogative is True
    assert parse_labels(labels[:-1] + [lab("sil", e3="0")]).interrogative is False


@pytest.mark.parametrize("text", ["", "   ", "！！", "、。", "😀🎉", "「」"])
def test_nothing_to_pronounce(text):
    with pytest.raises(NoPronunciationError):
        JapaneseFrontend()(text)


CSV = (
    # reading and accent of a word the dictionary reads otherwise (白部: シロベ)
    "白部,,,1,名詞,固有名詞,一般,*,*,*,白部,シラベ,シラベ,1/3,*\n"
    # accent only: 箸 type 1 → type 2
    "箸,,,1,名詞,一般,*,*,*,*,箸,ハシ,ハシ,2/2,*\n"
    # reading: 明日 アシタ → アス (type 2)
    "明日,,,1,名詞,副詞可能,*,*,*,*,明日,アス,アス,2/2,C2\n"
)


@pytest.fixture
def user_csv(tmp_path):
    path = tmp_path / "words.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def test_user_dict_changes_reading_and_accent(user_csv, tmp_path):
    plain = JapaneseFrontend("prosody")
    custom = JapaneseFrontend("prosody", user_dict=user_csv, cache_dir=tmp_path / "cache")
    assert " ".join(plain("白部さん")) == "^ sh i [ r o ] b u s a N $"
    assert " ".join(custom("白部さん")) == "^ sh i ] r a b e s a N $"
    assert " ".join(plain("箸が")) == "^ h a ] sh i g a $"
    assert " ".join(custom("箸が")) == "^ h a [ sh i ] g a $"
    assert " ".join(custom("明日は雨")) == "^ a [ s u ] w a # a ] m e $"
    # the user dictionary of one frontend does not leak into another
    assert " ".join(plain("箸が")) == "^ h a ] sh i g a $"
    # ruby still wins over the user dictionary
    assert " ".join(custom("{白部|しろべ}")) == "^ sh i [ r o ] b e $"


def test_user_dict_compiled_once_by_content_hash(user_csv, tmp_path, monkeypatch):
    import pyopenjtalk

    calls = []
    real = pyopenjtalk.mecab_dict_index

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(pyopenjtalk, "mecab_dict_index", counting)
    cache = tmp_path / "cache"
    first = compile_user_dict(user_csv, cache)
    second = compile_user_dict(user_csv, cache)
    assert first == second and first.is_file()
    assert first.name == user_dict_hash(user_csv) + ".dic"
    assert len(calls) == 1
    JapaneseFrontend(user_dict=user_csv, cache_dir=cache)  # a new frontend reuses it too
    assert len(calls) == 1
    # a copy with the same content under another name hits the same entry
    copy = tmp_path / "copy.csv"
    copy.write_bytes(user_csv.read_bytes())
    assert compile_user_dict(copy, cache) == first and len(calls) == 1
    # changed content → new hash → compiled again
    user_csv.write_text(CSV + "柿,,,1,名詞,一般,*,*,*,*,柿,カキ,カキ,1/2,*\n", encoding="utf-8")
    third = compile_user_dict(user_csv, cache)
    assert third != first and len(calls) == 2


def test_bad_user_dict(tmp_path):
    with pytest.raises(UserDictError):
        JapaneseFrontend(user_dict=tmp_path / "missing.csv", cache_dir=tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("this is not,a dictionary\n", encoding="utf-8")
    with pytest.raises(UserDictError):
        JapaneseFrontend(user_dict=bad, cache_dir=tmp_path / "cache")


def test_reading_model_runs_on_one_thread_with_the_same_readings():
    """The 何 reading model is re-opened single-threaded; its readings equal a default session's."""
    import onnxruntime
    import pyopenjtalk
    from pyopenjtalk.yomi_model import nani_predict

    import shirabe.text.openjtalk  # noqa: F401  (re-opens the sessions at import)

    for session in (nani_predict.enc_session, nani_predict.model_session):
        assert session.get_session_options().intra_op_num_threads == 1
    texts = ["何人いますか", "何を食べますか", "何時ですか", "何でもない", "これは何", "何の話"]
    ours = [pyopenjtalk.g2p(t, kana=True) for t in texts]
    saved = nani_predict.enc_session, nani_predict.model_session
    try:
        nani_predict.enc_session = onnxruntime.InferenceSession(str(nani_predict.MODEL_DIR / "nani_enc.onnx"),
                                                                providers=["CPUExecutionProvider"])
        nani_predict.model_session = onnxruntime.InferenceSession(str(nani_predict.MODEL_DIR / "nani_model.onnx"),
                                                                  providers=["CPUExecutionProvider"])
        default = [pyopenjtalk.g2p(t, kana=True) for t in texts]
    finally:
        nani_predict.enc_session, nani_predict.model_session = saved
    assert ours == default
    assert ours[0].startswith("ナン") and ours[1].startswith("ナニ")
