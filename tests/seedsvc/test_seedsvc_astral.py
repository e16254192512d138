"""The ASTRAL-compatible content extractor: HuBERT truncation, ConvNeXt-V2, BSQ, checkpoints, pipeline.

A tiny random HuBERT (20 layers, hidden 32, hubert-large's layer-norm variant) and
a tiny encoder/quantizer stand in for ``facebook/hubert-large-ll60k`` and
``bsq2048_light.pth``; every numeric check recomputes the documented formulas
independently (numpy, transformers' own hidden states, hand-made bit patterns).
"""

import importlib
import logging
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from seedsvc.audio import SAMPLE_RATE
from seedsvc.content import load_content_extractor
from seedsvc.content.astral import (
    GRN,
    AstralConfig,
    AstralQuantizer,
    BinarySphericalQuantize,
    ConvNeXtV2Block,
    ConvNeXtV2Stage,
    load_astral_extractor,
    load_ssl_model,
)
from shirabe.audio import resample
from shirabe.cli import InputError

HIDDEN = 32
TINY = AstralConfig(input_dim=HIDDEN, dim=16, num_blocks=2, intermediate_dim=24, codebook_size=32)


def randomise(module: torch.nn.Module, seed: int, scale: float = 0.5) -> torch.nn.Module:
    """Random values for every parameter (GRN's gamma/beta start at zero otherwise)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return module


@pytest.fixture(scope="module")
def hubert_dir(tmp_path_factory):
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    d = tmp_path_factory.mktemp("hubert_tiny")
    cfg = HubertConfig(hidden_size=HIDDEN, num_hidden_layers=20, num_attention_heads=2, intermediate_size=48,
                       conv_dim=(16,) * 7, feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True,
                       num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    torch.manual_seed(0)
    HubertModel(cfg).save_pretrained(str(d))
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=True).save_pretrained(str(d))
    return d


@pytest.fixture(scope="module")
def tiny_state():
    model = randomise(AstralQuantizer(TINY), seed=1)
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def astral_ckpt(tmp_path_factory, tiny_state):
    """Plain state dict of the whole module, with unused decoder / ASR keys as upstream's file may have."""
    path = tmp_path_factory.mktemp("astral") / "bsq32_tiny.pth"
    torch.save({**tiny_state, "decoder.proj.weight": torch.zeros(3, 3), "asr_decoder.emb.weight": torch.zeros(4, 2)},
               path)
    return path


@pytest.fixture(scope="module")
def extractor(astral_ckpt, hubert_dir):
    return load_content_extractor("astral", astral_ckpt, ssl_model=hubert_dir)


def song(seconds: float, sr: int, f0: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    f = f0 * 2 ** (t / max(seconds, 1e-3) / 4)
    phase = 2 * np.pi * np.cumsum(f) / sr
    wav = sum(0.5**k * np.sin(k * phase) for k in range(1, 8)) * 0.2 * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return wav.astype(np.float32)


# ------------------------------------------------------------------------ SSL truncation


def test_truncated_hubert_is_hidden_state_18(hubert_dir):
    from transformers import HubertModel, Wav2Vec2FeatureExtractor

    full = HubertModel.from_pretrained(str(hubert_dir)).eval()
    fe = Wav2Vec2FeatureExtractor.from_pretrained(str(hubert_dir))
    ssl, fe2 = load_ssl_model(hubert_dir)
    assert len(ssl.encoder.layers) == 18 and isinstance(ssl.encoder.layer_norm, torch.nn.Identity)
    assert fe2.do_normalize and fe2.return_attention_mask
    x = fe(song(0.7, 16000), sampling_rate=16000, return_tensors="pt", return_attention_mask=True)
    with torch.no_grad():
        ref = full(x["input_values"], attention_mask=x["attention_mask"], output_hidden_states=True).hidden_states
        out = ssl(x["input_values"], attention_mask=x["attention_mask"]).last_hidden_state
    torch.testing.assert_close(out, ref[18], atol=1e-6, rtol=0)
    # the neighbouring layers differ, so the comparison can tell a wrong cut apart
    assert (out - ref[17]).abs().max() > 1e-3 and (out - ref[19]).abs().max() > 1e-3


# ------------------------------------------------------------------------ ConvNeXt-V2 vs numpy


def np_gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def np_grn(h, gamma, beta):  # h (T, C)
    gx = np.sqrt((h**2).sum(axis=0, keepdims=True))
    nx = gx / (gx.mean(axis=-1, keepdims=True) + 1e-6)
    return gamma * (h * nx) + beta + h


def np_block(x, p, dilation):  # x (C, T) float64, p: block state dict as numpy
    c, t = x.shape
    pad = 3 * dilation
    xp = np.pad(x, ((0, 0), (pad, pad)))
    w = p["dwconv.weight"][:, 0, :]
    h = sum(w[:, k : k + 1] * xp[:, k * dilation : k * dilation + t] for k in range(7)) + p["dwconv.bias"][:, None]
    mu = h.mean(axis=0, keepdims=True)
    var = ((h - mu) ** 2).mean(axis=0, keepdims=True)
    h = (h - mu) / np.sqrt(var + 1e-6) * p["norm.weight"][:, None] + p["norm.bias"][:, None]
    h = np_gelu(h.T @ p["pwconv1.weight"].T + p["pwconv1.bias"])
    h = np_grn(h, p["grn.gamma"][0], p["grn.beta"][0])
    h = h @ p["pwconv2.weight"].T + p["pwconv2.bias"]
    return x + h.T


def numpy_state(module, prefix=""):
    return {k[len(prefix):]: v.double().numpy() for k, v in module.state_dict().items() if k.startswith(prefix)}


@pytest.mark.parametrize("dilation", [1, 2])
def test_convnext_block_matches_numpy(dilation):
    block = randomise(ConvNeXtV2Block(6, 10, dilation), seed=dilation)
    x = torch.randn(2, 6, 23, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        out = block(x)
    p = numpy_state(block)
    for b in range(2):
        np.testing.assert_allclose(out[b].double().numpy(), np_block(x[b].double().numpy(), p, dilation),
                                   atol=2e-5, rtol=1e-5)


def test_grn_and_stage_match_numpy():
    grn = randomise(GRN(7), seed=3)
    h = torch.randn(1, 11, 7, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        out = grn(h)[0].double().numpy()
    gamma, beta = grn.gamma.detach().double().numpy()[0], grn.beta.detach().double().numpy()[0]
    np.testing.assert_allclose(out, np_grn(h[0].double().numpy(), gamma, beta), atol=1e-5, rtol=1e-5)
    # the norm is over time: scaling one time step changes the other steps' output
    h2 = h.clone()
    h2[0, 0] *= 3
    assert not torch.allclose(grn(h2)[0, 5], grn(h)[0, 5])

    stage = randomise(ConvNeXtV2Stage(dim=6, num_blocks=2, intermediate_dim=8, input_dim=5), seed=6)
    x = torch.randn(1, 5, 19, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        out = stage(x)[0].double().numpy()
    p = numpy_state(stage)
    ref = p["input_projection.weight"][:, :, 0] @ x[0].double().numpy() + p["input_projection.bias"][:, None]
    for i in range(2):
        ref = np_block(ref, {k[len(f"blocks.{i}."):]: v for k, v in p.items() if k.startswith(f"blocks.{i}.")}, 1)
    np.testing.assert_allclose(out, ref, atol=2e-5, rtol=1e-5)
    assert isinstance(ConvNeXtV2Stage(dim=6, num_blocks=1, intermediate_dim=8, input_dim=6).input_projection,
                      torch.nn.Identity)


# ------------------------------------------------------------------------ BSQ


def test_bsq_ids_are_msb_first_sign_bits():
    q = BinarySphericalQuantize(codebook_size=32, dim=5)
    assert q.codebook_dim == 5 and q.mask.tolist() == [16, 8, 4, 2, 1] and "mask" in q.state_dict()
    with torch.no_grad():
        q.project_in.weight.copy_(torch.eye(5))
        q.project_in.bias.zero_()
    rng = np.random.default_rng(0)
    patterns = [[(k >> (4 - j)) & 1 for j in range(5)] for k in range(32)]  # bit j of k, MSB first
    mags = rng.uniform(0.01, 3.0, size=(32, 5))
    x = torch.tensor(np.where(np.array(patterns) == 1, mags, -mags), dtype=torch.float32)[None]
    _, ids = q(x)
    assert ids.dtype == torch.int64 and ids[0].tolist() == list(range(32))
    # a hand-made example: signs + - - + + → 0b10011 = 19
    assert q(torch.tensor([[[0.2, -1.0, -0.1, 4.0, 0.3]]]))[1].item() == 19
    # positive rescaling (what the l2 normalisation does) keeps every id
    scale = torch.tensor(rng.uniform(0.1, 10.0, size=(1, 32, 1)), dtype=torch.float32)
    assert torch.equal(q(x * scale)[1], ids)


def test_bsq_full_size_against_numpy():
    q = randomise(BinarySphericalQuantize(codebook_size=2048, dim=512), seed=8, scale=0.05)
    x = torch.randn(2, 40, 512, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        quantized, ids = q(x)
    w, b = q.project_in.weight.double().detach().numpy(), q.project_in.bias.double().detach().numpy()
    z = x.double().numpy() @ w.T + b
    expected = ((z > 0) * (2 ** np.arange(10, -1, -1))).sum(-1)
    assert ids.numpy().tolist() == expected.tolist() and 0 <= ids.min() and ids.max() < 2048
    codes = np.where(z > 0, 1.0, -1.0) / math.sqrt(11)  # l2-normalised ±1
    wo, bo = q.project_out.weight.double().detach().numpy(), q.project_out.bias.double().detach().numpy()
    np.testing.assert_allclose(quantized.double().numpy(), codes @ wo.T + bo, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------ full-size layout


def expected_full_listing() -> dict[str, list[int]]:
    out = {"encoder.input_projection.weight": [512, 1024, 1], "encoder.input_projection.bias": [512]}
    for i in range(12):
        b = f"encoder.blocks.{i}."
        out.update({
            b + "dwconv.weight": [512, 1, 7], b + "dwconv.bias": [512],
            b + "norm.weight": [512], b + "norm.bias": [512],
            b + "pwconv1.weight": [1536, 512], b + "pwconv1.bias": [1536],
            b + "grn.gamma": [1, 1, 1536], b + "grn.beta": [1, 1, 1536],
            b + "pwconv2.weight": [512, 1536], b + "pwconv2.bias": [512],
        })
    out.update({"quantizer.project_in.weight": [11, 512], "quantizer.project_in.bias": [11],
                "quantizer.project_out.weight": [512, 11], "quantizer.project_out.bias": [512],
                "quantizer.mask": [11]})
    return out


def test_full_size_key_listing():
    with torch.device("meta"):
        model = AstralQuantizer(AstralConfig())
    listing = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert listing == expected_full_listing()
    assert AstralConfig.from_state_dict(model.state_dict(), "x.pth") == AstralConfig()


# ------------------------------------------------------------------------ checkpoints


def test_both_checkpoint_formats_load(tmp_path, astral_ckpt, tiny_state, hubert_dir, caplog):
    with caplog.at_level(logging.INFO):
        plain = load_astral_extractor(astral_ckpt, hubert_dir)
    assert "2 unused keys ignored" in caplog.text
    for k, v in plain.model.state_dict().items():
        if not k.startswith("ssl_model."):
            assert torch.equal(v, tiny_state[k]), k
    assert plain.codebook_size == 32 and plain.dim == 32 and plain.discrete and plain.name == "astral"

    enc = {f"module.{k[len('encoder.'):]}": v for k, v in tiny_state.items() if k.startswith("encoder.")}
    vq = {k[len("quantizer."):]: v for k, v in tiny_state.items() if k.startswith("quantizer.") and k != "quantizer.mask"}
    hub = {"encoder.layers.0.attention.q_proj.weight": torch.full((HIDDEN, HIDDEN), 0.01),
           "encoder.layers.19.attention.q_proj.weight": torch.zeros(HIDDEN, HIDDEN)}  # layer 19 is cut off
    torch.save({"net": {"encoder": enc, "vq": vq, "decoder": {"w": torch.zeros(2)}}}, tmp_path / "net.pth")
    torch.save({**tiny_state, **{f"ssl_model.{k}": v for k, v in hub.items()}}, tmp_path / "with_ssl.pth")
    net = load_astral_extractor(tmp_path / "net.pth", hubert_dir)
    wav = song(0.8, 16000)
    assert torch.equal(net.tokens(wav), plain.tokens(wav))
    with_ssl = load_astral_extractor(tmp_path / "with_ssl.pth", hubert_dir)
    q = with_ssl.model.ssl_model.encoder.layers[0].attention.q_proj.weight
    assert torch.equal(q, hub["encoder.layers.0.attention.q_proj.weight"])


def test_checkpoint_errors_are_one_line(tmp_path, tiny_state, hubert_dir):
    missing = {k: v for k, v in tiny_state.items() if k != "encoder.blocks.1.grn.beta"}
    torch.save(missing, tmp_path / "missing.pth")
    wrong = {**tiny_state, "encoder.blocks.1.pwconv2.weight": torch.zeros(16, 25)}
    torch.save(wrong, tmp_path / "wrong.pth")
    extra = {**tiny_state, "encoder.output_projection.weight": torch.zeros(16, 16, 1)}
    torch.save(extra, tmp_path / "extra.pth")
    cases = [
        (tmp_path / "missing.pth", hubert_dir, "missing.pth: missing 'encoder.blocks.1.grn.beta'"),
        (tmp_path / "wrong.pth", hubert_dir, "wrong.pth: 'encoder.blocks.1.pwconv2.weight' has shape [16, 25], "
                                             "expected [16, 24]"),
        (tmp_path / "extra.pth", hubert_dir, "'encoder.output_projection.weight' is not part of"),
        (tmp_path / "missing.pth", None, "--ssl-model is needed"),
        (tmp_path / "missing.pth", tmp_path / "no_hubert", "no_hubert: no such HuBERT model directory"),
        (tmp_path / "absent.pth", hubert_dir, "absent.pth: no such checkpoint file"),
    ]
    for ckpt, ssl, message in cases:
        with pytest.raises(InputError) as e:
            load_content_extractor("astral", ckpt, ssl_model=ssl)
        assert message in str(e.value) and "\n" not in str(e.value)


# ------------------------------------------------------------------------ frames


def torch_nearest_index(n: int, t: int) -> np.ndarray:
    """F.interpolate(mode='nearest')'s source index: floor(i * float32(n / t)), in float32."""
    scale = np.float32(n) / np.float32(t)
    return np.minimum(np.floor(np.arange(t, dtype=np.float32) * scale).astype(np.int64), n - 1)


@pytest.mark.parametrize("sr", [16000, 22050, 44100])
def test_ids_at_mel_frame_rate(extractor, sr):
    wav = song(1.3, sr)
    ids = extractor.extract(wav, sr)
    n22 = len(resample(wav, sr, SAMPLE_RATE))
    assert ids.dtype == torch.int64 and ids.shape == (n22 // 256,)
    assert int(ids.min()) >= 0 and int(ids.max()) < 32
    wav16 = resample(wav, sr, 16000)
    ids50 = extractor.tokens(wav16)
    hubert_frames = (len(wav16) - 400) // 320 + 1
    assert ids50.shape == (min(len(wav16) // 320, hubert_frames),)
    assert torch.equal(ids, ids50[torch_nearest_index(len(ids50), n22 // 256)])
    assert len(set(ids50.tolist())) > 1  # the signal gives more than one token


def test_long_audio_in_windows(extractor):
    wav = song(65.0, 16000, f0=180.0)  # 30 s windows starting at 0, 25, 50 s
    ids = extractor.tokens(wav)
    w0 = extractor.tokens(wav[: 30 * 16000])
    w1 = extractor.tokens(wav[25 * 16000 : 55 * 16000])
    w2 = extractor.tokens(wav[50 * 16000 :])
    # each id sits at its window's start / 320 + index; later windows add only frames not yet taken
    expected = torch.cat([w0, w1[len(w0) - 1250 :], w2[1250 + len(w1) - 2500 :]])
    assert len(w0) == 1499 and ids.shape == (len(wav) // 320 - 1,)
    assert torch.equal(ids, expected)
    with pytest.raises(InputError, match="too short for HuBERT"):
        extractor.tokens(np.zeros(300, dtype=np.float32))


# ------------------------------------------------------------------------ pipeline

TINY_DISCRETE = """
cfm:
  estimator: {hidden_dim: 32, depth: 2, num_heads: 2, in_channels: 80, content_dim: 32, style_encoder_dim: 192,
              block_size: 512, class_dropout_prob: 0.1, time_as_token: true, style_as_token: true,
              uvit_skip_connection: false}
cfm_length_regulator: {channels: 32, is_discrete: %s, codebook_size: %d, sampling_ratios: [1, 1]}
f0: {enabled: false}
training: {segment_frames: 64, batch_size: 2, save_every: 100, log_every: 1, phase0: {lr: 1.0e-3, num_steps: 3, warmup: 1}}
inference: {max_context_frames: 200, max_prompt_frames: 60, crossfade_frames: 8, diffusion_steps: 2,
            cfg_rate: [0.7, 0.7]}
"""


def cli(monkeypatch, module, *args):
    import shirabe.train.process

    mod = importlib.import_module(module)
    for m in (mod, shirabe.train.process):  # the binaries' logging set-up would undo caplog's
        for name in ("setup_logging", "setup_rank_logging"):
            if hasattr(m, name):
                monkeypatch.setattr(m, name, lambda *a, **k: None)
    return mod.main([str(a) for a in args])


def test_compute_content_train_convert(tmp_path, monkeypatch, astral_ckpt, hubert_dir, caplog):
    from lhotse import CutSet

    from seedsvc.content.phone_classifier import PhoneClassifier, save_phone_classifier

    monkeypatch.setenv("TQDM_DISABLE", "1")
    rows = ["utt_id\tspeaker\twav\tf0"]
    for i, (f0, sr) in enumerate([(220.0, 44100), (330.0, 22050)]):
        sf.write(tmp_path / f"s{i}.wav", song(1.5, sr, f0), sr)
        np.save(tmp_path / f"s{i}.f0.npy", np.full(150, f0, dtype=np.float32))
        rows.append(f"s{i}\tspk{i}\ts{i}.wav\ts{i}.f0.npy")
    (tmp_path / "list.tsv").write_text("\n".join(rows) + "\n")
    feats = tmp_path / "feats"
    cli(monkeypatch, "seedsvc.bin.compute_features", "--input", tmp_path / "list.tsv", "--output-dir", feats,
        "--style-encoder", "melstats")
    with caplog.at_level(logging.INFO):
        cli(monkeypatch, "seedsvc.bin.compute_content", "--cuts", feats / "cuts_train.jsonl.gz", "--output",
            feats / "cuts_astral.jsonl.gz", "--content-extractor", "astral", "--content-checkpoint", astral_ckpt,
            "--ssl-model", hubert_dir)
    assert "(T,) int64 token ids, codebook 32" in caplog.text
    top = 0
    for cut in CutSet.from_file(feats / "cuts_astral.jsonl.gz"):
        ids, mel = cut.load_custom("content"), cut.load_custom("mel")
        assert ids.dtype == np.int64 and ids.shape == (mel.shape[0],) and 0 <= ids.min() and ids.max() < 32
        top = max(top, int(ids.max()))
    assert top > 0

    for name, discrete, size in [("conf.yaml", "true", 32), ("cont.yaml", "false", 32), ("small.yaml", "true", 1)]:
        (tmp_path / name).write_text(TINY_DISCRETE % (discrete, size))
    train = ("seedsvc.bin.train", "--phase", 0, "--cuts", feats / "cuts_astral.jsonl.gz")
    with pytest.raises(InputError, match="is_discrete is false and takes \\(T, D\\) float features"):
        cli(monkeypatch, *train, "--config", tmp_path / "cont.yaml", "--exp-dir", tmp_path / "bad1")
    with pytest.raises(InputError, match="outside .*codebook_size 1"):
        cli(monkeypatch, *train, "--config", tmp_path / "small.yaml", "--exp-dir", tmp_path / "bad2")
    # float (phone) content into a discrete length regulator
    save_phone_classifier(tmp_path / "phone.pt", PhoneClassifier(3, channels=8, num_layers=1), ["sil", "a", "i"])
    cli(monkeypatch, "seedsvc.bin.compute_content", "--cuts", feats / "cuts_train.jsonl.gz", "--output",
        feats / "cuts_phone.jsonl.gz", "--content-checkpoint", tmp_path / "phone.pt")
    with pytest.raises(InputError, match="is_discrete is true and takes \\(T,\\) token ids"):
        cli(monkeypatch, "seedsvc.bin.train", "--phase", 0, "--cuts", feats / "cuts_phone.jsonl.gz", "--config",
            tmp_path / "conf.yaml", "--exp-dir", tmp_path / "bad3")

    exp = tmp_path / "p0"
    assert cli(monkeypatch, *train, "--config", tmp_path / "conf.yaml", "--exp-dir", exp) == 0
    lr = torch.load(exp / "model.pth", weights_only=True)["net"]["length_regulator"]
    assert lr["embedding.weight"].shape == (32, 32) and "content_in_proj.weight" not in lr

    io = ("--model-dir", exp, "--style-encoder", "melstats", "--source", tmp_path / "s0.wav", "--reference",
          tmp_path / "s1.wav", "--output", tmp_path / "out.wav")
    astral = ("--content-extractor", "astral", "--content-checkpoint", astral_ckpt)
    with pytest.raises(InputError, match="--ssl-model is needed"):
        cli(monkeypatch, "seedsvc.bin.convert", *io, *astral)
    with pytest.raises(InputError, match="the 'phone' extractor gives float features, the model .* takes token ids"):
        cli(monkeypatch, "seedsvc.bin.convert", *io, "--content-checkpoint", tmp_path / "phone.pt")
    assert cli(monkeypatch, "seedsvc.bin.convert", *io, *astral, "--ssl-model", hubert_dir) == 0
    out, sr = sf.read(tmp_path / "out.wav")
    src, src_sr = sf.read(tmp_path / "s0.wav")
    assert sr == SAMPLE_RATE and len(out) == len(resample(src, src_sr, SAMPLE_RATE)) // 256 * 256
    assert np.isfinite(out).all() and np.abs(out).max() > 0
