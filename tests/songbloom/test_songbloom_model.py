"""SongBloom model: the released layout, config reading, strict loading, generation rules, training bits.

The released 150 s key/shape list (``songbloom_full_keys.tsv``) is built on the meta device. The
tiny fixture model (``songbloom_tiny``) runs generation; small random models run the training
checks. Expected values are hand-derived (stop-rule table, key lists, dropout outcomes) or come
from a second, independent path (cache vs recomputation, fp32 vs bf16, checkpointing on vs off).
"""

import dataclasses
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from shirabe.cli import InputError
from shirabe.codec import STABLE_AUDIO_1920_VAE_CONFIG
from songbloom.g2p import tokenize
from songbloom.models import (
    DIT_LINEARS,
    LM_LINEARS,
    LYRIC_EMBEDDING,
    ConditionInputs,
    LyricBatch,
    MVSADiTAR,
    SongBloom,
    apply_condition_dropout,
    full_config,
    load_config,
    load_model,
    tiny_config,
)

FIXTURES = Path(os.environ.get("SHIRABE_FIXTURES", Path(__file__).resolve().parents[1] / "fixtures"))
FIX = FIXTURES / "songbloom_tiny"
FULL_KEYS = FIXTURES / "songbloom_full_keys.tsv"
MINI_YAML = Path(__file__).resolve().parents[2] / "songbloom" / "models" / "configs" / "songbloom_tiny_mini.yaml"
LYRICS = "[verse] n i3 h ao3 . w o3 , [chorus] sh ir4 j ie4"


def read_full_keys() -> dict[str, tuple[int, ...]]:
    rows = FULL_KEYS.read_text(encoding="utf-8").splitlines()[1:]
    out = {}
    for row in rows:
        key, shape = row.split("\t")[:2]
        out[key] = tuple(int(s) for s in shape.split("x"))
    return out


@pytest.fixture(scope="module")
def tiny():
    return load_model(FIX / "songbloom_tiny.yaml")


# -- layout ------------------------------------------------------------------------------------


def test_full_config_has_the_released_values():
    c = full_config()
    m = c.model
    assert (m.dim, m.num_heads, m.lm_layers, m.diff_layers, m.num_pitch, len(m.vocab)) == (1536, 24, 36, 12, 16384, 330)
    assert (m.lyric_max_len, m.max_sentence_per_structure, m.prompt_max_len) == (600, 50, 250)
    assert (m.latent_dim, m.block_size, m.timestep_features_dim, m.hidden_scale) == (64, 16, 256, 4)
    assert (m.eos_id, m.ignore_id, m.dit_rotary_dims, m.dit_tokens) == (16384, 16385, 32, 50)
    assert (c.inference.top_k, c.inference.steps, c.inference.penalty_window) == (100, 36, 50)


def test_full_model_on_meta_matches_the_released_key_list():
    expected = read_full_keys()
    config = dataclasses.replace(full_config(), vae_config=STABLE_AUDIO_1920_VAE_CONFIG)
    model = SongBloom(config, device="meta")
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    model_part = [(k, s) for k, s in got.items() if k.startswith("model.")]
    assert model_part == [(k, s) for k, s in expected.items() if k.startswith("model.")]  # same order too
    assert got == expected  # with the 1920 VAE: the whole file
    assert len(expected) == 819 and sum(1 for k in expected if k.startswith("vae.vae.")) == 365


def test_lora_targets_and_parameter_groups(tiny):
    model = tiny.model
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    lm = [n for n in names if n.startswith("ar_transformer.")]
    dit = [n for n in names if n.startswith("nar_dit.")]
    assert sorted({n.split(".")[-1] for n in lm}) == sorted(LM_LINEARS)
    assert all(any(n.endswith("." + t) for t in DIT_LINEARS) for n in dit)
    assert {t for t in DIT_LINEARS if any(n.endswith("." + t) for n in dit)} == set(DIT_LINEARS)
    assert isinstance(model.get_submodule(LYRIC_EMBEDDING), torch.nn.Embedding)
    groups = model.parameter_groups()
    grouped = [id(p) for ps in groups.values() for p in ps]
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert sorted(grouped) == sorted(trainable)  # every trainable parameter exactly once
    assert model.get_submodule(LYRIC_EMBEDDING).weight in groups["lyric_embedding"]


# -- config ------------------------------------------------------------------------------------


def test_load_config_resolves_the_schema(tmp_path):
    c = load_config(FIX / "songbloom_tiny.yaml")
    assert Path(c.pretrained_path) == (FIX / "songbloom_tiny.pt").resolve()
    assert Path(c.vae_cfg) == (FIX / "songbloom_tiny_vae.json").resolve()
    assert len(c.model.vocab) == 330 and c.model.vocab.symbols[1] == "[verse]"
    assert c.model.rotary_base_val == 20000 and c.model.h_dropout == 0.05 and c.max_dur == 0.32
    assert c.model.attribute_dropout == {"text": {"lyrics": 0.0}, "wav": {"prompt_wav": 0.1}}
    # ??? may stand for another folder (which then holds the vocabulary too)
    shutil.copy(FIX / "vocab_g2p.yaml", tmp_path / "vocab_g2p.yaml")
    other = load_config(FIX / "songbloom_tiny.yaml", local_dir=tmp_path)
    assert Path(other.vae_ckpt) == tmp_path / "songbloom_tiny_vae.ckpt"


def test_mini_config_builds_a_small_model():
    c = load_config(MINI_YAML)
    assert (c.model.block_size, c.model.latent_dim, c.model.prompt_max_len) == (16, 16, 250)
    model = SongBloom(c, with_vae=False)
    n = sum(p.numel() for p in model.model.parameters())
    assert 1_000_000 < n < 3_000_000


def _write_config(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load((FIX / "songbloom_tiny.yaml").read_text(encoding="utf-8"))
    edit(data)
    shutil.copy(FIX / "vocab_g2p.yaml", tmp_path / "vocab_g2p.yaml")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("edit, field", [
    (lambda d: d["model"].pop("num_pitch"), "model.num_pitch"),
    (lambda d: d["model"].update(lm_layer=2), "model.lm_layer"),
    (lambda d: d["model"]["condition_provider_cfg"]["prompt_wav"].update(max_len="???"),
     "model.condition_provider_cfg.prompt_wav.max_len"),
    (lambda d: d["model"].update(diffusion_objective="v"), "model.diffusion_objective"),
    (lambda d: d["model"].update(num_heads=8), "model.num_heads"),
    (lambda d: d["model"]["condition_provider_cfg"]["lyrics"].update(mode="concat"),
     "model.condition_provider_cfg.lyrics.mode"),
    (lambda d: d["model"]["condition_provider_cfg"]["lyrics"].update(vocab_list="${load_yaml:nope.yaml}"),
     "model.condition_provider_cfg.lyrics.vocab_list"),
    (lambda d: d["model"].update(dim="${model.width}"), "model.dim"),
    (lambda d: d.update(pretrained_path="${other:x}"), "pretrained_path"),
    (lambda d: d["model"]["fuser_cfg"].update(prepend=["lyrics"]), "model.fuser_cfg.prepend"),
])
def test_bad_config_fields_are_one_line_errors(tmp_path, edit, field):
    path = _write_config(tmp_path, edit)
    with pytest.raises(InputError) as err:
        load_config(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and f"'{field}'" in message


# -- strict loading ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fixture_state():
    return torch.load(FIX / "songbloom_tiny.pt", map_location="cpu", weights_only=True)


def _save(tmp_path: Path, state: dict) -> Path:
    path = tmp_path / "edited.pt"
    torch.save(state, path)
    return path


def test_strict_load_errors(tmp_path, fixture_state):
    yaml_path = FIX / "songbloom_tiny.yaml"
    missing = dict(fixture_state)
    del missing["model.skeleton_emb.weight"]
    with pytest.raises(InputError, match=r"missing keys: model\.skeleton_emb\.weight") as err:
        load_model(yaml_path, _save(tmp_path, missing))
    assert "\n" not in str(err.value)

    extra = dict(fixture_state, **{"model.extra.weight": torch.zeros(2), "optimizer.step": torch.zeros(1)})
    with pytest.raises(InputError, match=r"unexpected keys: model\.extra\.weight, optimizer\.step"):
        load_model(yaml_path, _save(tmp_path, extra))
    loose = load_model(yaml_path, _save(tmp_path, extra), strict=False)  # unexpected keys tolerated
    assert torch.equal(loose.model.bos_token, fixture_state["model.bos_token"])

    wrong = dict(fixture_state, **{"model.bos_token": torch.zeros(64)})
    with pytest.raises(InputError, match=r"shape mismatch: model\.bos_token \(64,\) \(expected \(128,\)\)"):
        load_model(yaml_path, _save(tmp_path, wrong))

    vae_wrong = dict(fixture_state)
    del vae_wrong["vae.vae.decoder.layers.0.bias"]
    with pytest.raises(InputError, match=r"vae\.vae\.\*.*missing keys: decoder\.layers\.0\.bias"):
        load_model(yaml_path, _save(tmp_path, vae_wrong))


def test_legacy_vae_copy_is_dropped_and_vae_files_are_used(tmp_path, fixture_state):
    yaml_path = FIX / "songbloom_tiny.yaml"
    legacy = dict(fixture_state)
    for k, v in fixture_state.items():
        if k.startswith("vae.vae."):
            legacy["model.condition_provider.conditioners.prompt_wav.tokenizer.vae." + k[len("vae.vae."):]] = v
    model = load_model(yaml_path, _save(tmp_path, legacy))
    assert not any("tokenizer" in k for k in model.state_dict())

    no_vae = {k: v for k, v in fixture_state.items() if not k.startswith("vae.vae.")}
    model = load_model(yaml_path, _save(tmp_path, no_vae))  # VAE from vae.vae_cfg + vae.vae_ckpt
    for k, v in fixture_state.items():
        assert torch.equal(model.state_dict()[k], v), k


def test_bf16_load_keeps_the_vae_in_fp32():
    model = load_model(FIX / "songbloom_tiny.yaml", dtype=torch.bfloat16)
    assert {p.dtype for p in model.model.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in model.vae.parameters()} == {torch.float32}
    assert not any(p.requires_grad for p in model.vae.parameters())
    tokens, latents = model.generate(LYRICS, prompt_latents=torch.randn(1, 8, 10), max_frames=4, steps=2,
                                     generator=torch.Generator().manual_seed(0))
    assert tokens.shape == (1, 4) and latents.shape == (1, 8, 4) and latents.dtype == torch.bfloat16
    assert model.decode(latents).dtype == torch.float32


# -- generation --------------------------------------------------------------------------------


def _gen(model, seed, **kwargs):
    wav = torch.sin(torch.arange(4800) / 7.0)[None] * 0.3
    options = dict(prompt_wav=wav, max_frames=8, steps=4, top_k=8, temp=1.0, penalty_window=6,
                   generator=torch.Generator().manual_seed(seed))
    options.update(kwargs)
    return model.generate(LYRICS, **options)


def test_seeded_generation_is_reproducible(tiny):
    a_tok, a_lat = _gen(tiny, 3)
    b_tok, b_lat = _gen(tiny, 3)
    assert torch.equal(a_tok, b_tok) and torch.equal(a_lat, b_lat)
    c_tok, c_lat = _gen(tiny, 4)
    assert not torch.equal(a_lat, c_lat)
    assert a_tok.shape == (1, 8) and a_lat.shape == (1, 8, 8)


def test_kv_cache_equals_recomputation(tiny):
    a_tok, a_lat = _gen(tiny, 5, max_frames=12)
    b_tok, b_lat = _gen(tiny, 5, max_frames=12, use_cache=False)
    assert torch.equal(a_tok, b_tok)
    torch.testing.assert_close(a_lat, b_lat, atol=1e-5, rtol=1e-5)


# patch k (P=4) is kept while 1 + 5(k - 1) <= max_frames · 5/4: worked out by hand
STOP_TABLE = [(0, 0), (3, 1), (4, 1), (7, 2), (8, 2), (9, 3), (10, 3), (12, 3), (13, 4)]


def test_stop_rule_table():
    for max_frames, patches in STOP_TABLE:
        assert MVSADiTAR.max_patches(max_frames, 4) == patches, max_frames


@pytest.mark.parametrize("max_frames, patches", [(10, 3), (3, 1), (0, 0)])
def test_generation_budget_not_a_multiple_of_the_patch(tiny, max_frames, patches):
    done = []
    tokens, latents = _gen(tiny, 1, max_frames=max_frames, steps=2, progress=lambda i, n: done.append((i, n)))
    assert tokens.shape == (1, 4 * patches) and latents.shape == (1, 8, 4 * patches)
    assert done == [(i, patches) for i in range(1, patches + 1)]


def test_eos_ends_the_song_and_drops_its_patch(tmp_path, fixture_state):
    state = dict(fixture_state)
    bias = state["model.skeleton_classifier.2.bias"].clone()
    bias[64] = 1e4  # EOS wins every step
    state["model.skeleton_classifier.2.bias"] = bias
    model = load_model(FIX / "songbloom_tiny.yaml", _save(tmp_path, state))
    tokens, latents = _gen(model, 0, max_frames=40, steps=2)
    assert tokens.shape == (1, 0) and latents.shape == (1, 8, 0)


# -- training ----------------------------------------------------------------------------------


def _train_batch(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = model.config
    B, T = 2, 12
    x_sketch = torch.randint(0, c.num_pitch, (B, T), generator=g)
    x_sketch[1, 8:] = c.eos_id
    x_latent = torch.randn(B, c.latent_dim, T, generator=g)
    x_latent[1, :, 8:] = 0
    toks = [tokenize(LYRICS, c.vocab, c.max_sentence_per_structure), None]
    return dict(x_sketch=x_sketch, x_latent=x_latent, x_len=torch.tensor([12, 8]),
                lyrics=LyricBatch.from_tokens(toks, c.lyric_max_len),
                prompt_latents=torch.randn(B, c.latent_dim, 10, generator=g), prompt_lens=torch.tensor([10, 0]))


def _small_model(seed=0):
    torch.manual_seed(seed)
    return MVSADiTAR(tiny_config(dim=64, num_heads=2).model)


def _loss(out):
    ce = torch.nn.functional.cross_entropy(out.ar_logit.transpose(1, 2), out.ar_target, ignore_index=65)
    return ce + 0.1 * torch.nn.functional.mse_loss(out.nar_pred, out.nar_target)


def test_ar_target_and_block_count():
    model = _small_model()
    batch = _train_batch(model)
    out = model(**batch)
    assert out.ar_logit.shape == (2, 13, 65) and out.nar_pred.shape == (5, 4, 8) and out.nar_t.shape == (5,)
    expected = torch.cat([batch["x_sketch"], torch.full((2, 1), 64)], dim=1)
    expected[1, 9:] = 65
    expected[1, 8] = 64
    assert torch.equal(out.ar_target, expected)
    assert bool(((out.nar_t > 0) & (out.nar_t < 1)).all())


def test_gradient_checkpointing_gives_the_same_gradients():
    grads = []
    for flag in (False, True):
        model = _small_model(1).train()
        model.gradient_checkpointing = flag
        out = model(**_train_batch(model), generator=torch.Generator().manual_seed(7))
        _loss(out).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for k in grads[0]:
        torch.testing.assert_close(grads[0][k], grads[1][k], atol=1e-6, rtol=1e-5)


def test_flow_loss_reaches_the_lm():
    model = _small_model(2).eval()
    out = model(**_train_batch(model), generator=torch.Generator().manual_seed(0))
    torch.nn.functional.mse_loss(out.nar_pred, out.nar_target).backward()
    assert model.ar_transformer.layers[0].self_attn.q_proj.weight.grad.abs().sum() > 0  # through h
    assert model.skeleton_classifier[2].weight.grad is None  # the classifier is not on that path


def test_bf16_autocast_forward_on_cpu():
    model = _small_model(3).eval()
    batch = _train_batch(model)
    g = dict(generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(**batch, **g)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(**batch, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out.ar_logit).all() and torch.isfinite(out.nar_pred).all()
    torch.testing.assert_close(out.ar_logit.float(), ref.ar_logit, atol=0.05, rtol=0.05)
    torch.testing.assert_close(out.nar_pred.float(), ref.nar_pred, atol=0.1, rtol=0.05)


def test_bf16_weights_train_step_with_checkpointing():
    model = _small_model(4).to(torch.bfloat16).train()
    model.gradient_checkpointing = True
    out = model(**_train_batch(model), generator=torch.Generator().manual_seed(0))
    assert out.nar_pred.dtype == torch.bfloat16 and out.ar_logit.dtype == torch.bfloat16
    _loss(out).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad.float()).all()
               for p in model.ar_transformer.parameters())


def test_condition_dropout_draws_and_nulls():
    model = _small_model()
    batch = _train_batch(model)
    inputs = ConditionInputs(batch["lyrics"], batch["prompt_latents"], None)
    cfg = model.config

    # nothing dropped at p = 0: the same object back, 1 + 2 draws taken
    g = torch.Generator().manual_seed(0)
    quiet = dataclasses.replace(cfg, cfg_dropout=0.0, attribute_dropout={"text": {"lyrics": 0.0},
                                                                          "wav": {"prompt_wav": 0.0}})
    assert apply_condition_dropout(inputs, quiet, g) is inputs
    ref = torch.Generator().manual_seed(0)
    torch.rand(3, generator=ref)
    assert torch.equal(torch.rand(1, generator=g), torch.rand(1, generator=ref))

    # cfg_dropout 1: every condition of every element is null
    out = apply_condition_dropout(inputs, dataclasses.replace(quiet, cfg_dropout=1.0))
    null = LyricBatch.null(2, cfg.lyric_max_len)
    assert torch.equal(out.lyrics.ids, null.ids) and torch.equal(out.lyrics.sentence, null.sentence)
    assert out.prompt_latents.abs().sum() == 0 and out.prompt_lens.tolist() == [0, 0]

    # prompt dropout only: the lyrics stay, the prompt rows become zero
    only_prompt = dataclasses.replace(quiet, attribute_dropout={"wav": {"prompt_wav": 1.0}})
    out = apply_condition_dropout(dict(lyrics=inputs.lyrics, prompt_latents=inputs.prompt_latents,
                                       prompt_lens=torch.tensor([10, 7])), only_prompt)
    assert out["lyrics"] is inputs.lyrics and out["prompt_lens"].tolist() == [0, 0]
    rows, mask = model.condition_provider.prompt(out["prompt_latents"], out["prompt_lens"])
    assert rows.abs().sum() == 0 and mask.sum() == 0

    # per-sample decisions draw B uniforms per step
    g = torch.Generator().manual_seed(1)
    apply_condition_dropout(inputs, quiet, g, per_sample=True)
    ref = torch.Generator().manual_seed(1)
    torch.rand(6, generator=ref)
    assert torch.equal(torch.rand(1, generator=g), torch.rand(1, generator=ref))


def test_lyric_batch_cuts_pads_and_nulls():
    toks = tokenize(LYRICS, full_config().model.vocab)
    batch = LyricBatch.from_tokens([toks, None], max_len=5)
    assert batch.ids.shape == (2, 5) and batch.lengths.tolist() == [5, 1]
    assert batch.ids[0].tolist() == toks.ids[:5]
    assert batch.ids[1].tolist() == [0] * 5 and batch.sentence[1].tolist() == [1, 0, 0, 0, 0]
