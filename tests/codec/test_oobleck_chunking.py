"""Overlapped chunk layout, chunked decode/encode, and how far they are from unchunked.

Measured on the tiny fixture VAE (CPU, fp32): default layout (128/32 frames) on 3000 random latent
frames, decode differs from unchunked by 7.6e-5 (its receptive field exceeds the 16-frame crop), and
by 2.7e-7 with a 48-frame overlap; encode of a 2 s random signal differs by 4.5e-7 with the default
layout and by 1.2e-2 when the overlap is only 16 frames.
"""

import numpy as np
import pytest
import torch

from shirabe.codec import ChunkPiece, chunk_plan

pytestmark = pytest.mark.usefixtures("single_torch_thread")


# ---- layout -------------------------------------------------------------------

@pytest.mark.parametrize("total, chunk, overlap, expected", [
    (0, 128, 32, []),
    (50, 128, 32, [(0, 50, 0, 50)]),
    (128, 128, 32, [(0, 128, 0, 128)]),
    # [0,128) and the end-aligned [72,200); the second overwrites 88..112 of the first
    (200, 128, 32, [(0, 128, 0, 88), (72, 200, 88, 200)]),
    # an odd overlap: hop 95, crop 16
    (200, 128, 33, [(0, 128, 0, 88), (72, 200, 88, 200)]),
    # regular chunks that end exactly at the end: no extra chunk
    (320, 128, 32, [(0, 128, 0, 112), (96, 224, 112, 208), (192, 320, 208, 320)]),
    # one frame more: an end-aligned chunk at 193 takes over from frame 209
    (321, 128, 32, [(0, 128, 0, 112), (96, 224, 112, 208), (192, 320, 208, 209), (193, 321, 209, 321)]),
    (300, 100, 0, [(0, 100, 0, 100), (100, 200, 100, 200), (200, 300, 200, 300)]),
])
def test_chunk_plan(total, chunk, overlap, expected):
    assert chunk_plan(total, chunk, overlap) == [ChunkPiece(*p) for p in expected]


@pytest.mark.parametrize("chunk, overlap", [(128, 32), (16, 6), (10, 9), (7, 0)])
def test_chunk_plan_partitions(chunk, overlap):
    for total in range(1, 300):
        plan = chunk_plan(total, chunk, overlap)
        assert plan[0].keep_start == 0 and plan[-1].keep_end == total
        for a, b in zip(plan, plan[1:]):
            assert a.keep_end == b.keep_start and a.keep_start < a.keep_end
        for p in plan:
            assert 0 <= p.start <= p.keep_start < p.keep_end <= p.stop <= total
            assert p.stop - p.start == min(chunk, total)


@pytest.mark.parametrize("chunk, overlap", [(0, 0), (8, 8), (8, -1)])
def test_chunk_plan_rejects_bad_sizes(chunk, overlap):
    with pytest.raises(ValueError):
        chunk_plan(100, chunk, overlap)


# ---- chunked decode -------------------------------------------------------------

def pasted_reference(vae, latents, chunk, overlap):
    """SongBloom's paste, written out: zeros, then each chunk in order, later ones overwriting."""
    total, ratio = latents.shape[-1], vae.downsampling_ratio
    starts = list(range(0, total - chunk + 1, chunk - overlap))
    if starts[-1] + chunk != total:
        starts.append(total - chunk)
    out = torch.zeros(latents.shape[0], 2, total * ratio)
    ol = (overlap // 2) * ratio
    for i, s in enumerate(starts):
        piece = vae.decode(latents[:, :, s:s + chunk])
        t0, t1, c0, c1 = s * ratio, (s + chunk) * ratio, 0, chunk * ratio
        if i > 0:
            t0, c0 = t0 + ol, c0 + ol
        if i < len(starts) - 1:
            t1, c1 = t1 - ol, c1 - ol
        out[:, :, t0:t1] = piece[:, :, c0:c1]
    return out


@pytest.mark.parametrize("total", [129, 321, 500])
def test_chunked_decode_follows_the_paste_rule(tiny_vae, total):
    latents = torch.randn(2, tiny_vae.latent_dim, total, generator=torch.Generator().manual_seed(total))
    chunked = tiny_vae.decode(latents, chunked=True)
    assert chunked.shape == (2, 2, total * tiny_vae.downsampling_ratio)
    assert torch.equal(chunked, pasted_reference(tiny_vae, latents, 128, 32))


def test_chunked_decode_memory_is_bounded_by_the_chunk(tiny_vae):
    seen = []
    handle = tiny_vae.decoder.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[-1]))
    try:
        tiny_vae.decode(torch.zeros(1, tiny_vae.latent_dim, 1000), chunked=True, chunk_size=64, overlap=16)
    finally:
        handle.remove()
    assert seen and max(seen) == 64 and len(seen) == len(chunk_plan(1000, 64, 16))


def test_chunked_decode_difference_bound(tiny_vae):
    latents = torch.randn(1, tiny_vae.latent_dim, 3000, generator=torch.Generator().manual_seed(3))
    whole = tiny_vae.decode(latents)
    default = (tiny_vae.decode(latents, chunked=True) - whole).abs().max().item()
    wide = (tiny_vae.decode(latents, chunked=True, overlap=48) - whole).abs().max().item()
    assert 2e-6 < default < 2e-4  # measured 7.6e-5: the receptive field exceeds the 16-frame crop
    assert wide < 2e-6  # measured 2.7e-7: a 24-frame crop covers it


# ---- chunked encode --------------------------------------------------------------

@pytest.fixture(scope="module")
def long_signal(tiny_vae):
    """2 s of random stereo audio plus 5 samples (not a whole frame)."""
    return torch.randn(1, 2, 2 * tiny_vae.sample_rate + 5, generator=torch.Generator().manual_seed(11)) * 0.3


def test_chunked_encode_difference_bound(tiny_vae, long_signal):
    rate = tiny_vae.sample_rate
    whole = tiny_vae.encode(long_signal, rate)
    assert whole.shape[-1] == (long_signal.shape[-1]) // tiny_vae.downsampling_ratio
    seen = []
    handle = tiny_vae.encoder.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[-1]))
    try:
        chunked = tiny_vae.encode(long_signal, rate, chunked=True)
    finally:
        handle.remove()
    assert chunked.shape == whole.shape
    # windows of 128 frames; only the end-aligned last one also takes the 5 trailing samples
    assert max(seen) == 128 * tiny_vae.downsampling_ratio + 5 and len(seen) > 100
    diff = (chunked - whole).abs().max().item()
    assert diff < 2e-6  # measured 4.5e-7: the 16-frame margin covers this encoder's receptive field
    frame = 1 / tiny_vae.frame_rate
    narrow = tiny_vae.encode(long_signal, rate, chunked=True, chunk_seconds=128 * frame, overlap_seconds=16 * frame)
    assert (narrow - whole).abs().max().item() > 1e-3  # measured 1.2e-2: an 8-frame margin does not
    # a shifted grid would be far off: the frames sit on the hop
    shifted = tiny_vae.encode(long_signal[..., 1:], rate, chunked=True)
    assert (shifted - whole[..., :shifted.shape[-1]]).abs().max().item() > 1e-2


def test_chunked_encode_sample_uses_the_same_noise(tiny_vae, long_signal):
    rate = tiny_vae.sample_rate
    noise = torch.randn(1, tiny_vae.latent_dim, long_signal.shape[-1] // tiny_vae.downsampling_ratio,
                        generator=torch.Generator().manual_seed(5))
    a = tiny_vae.encode(long_signal, rate, sample=True, noise=noise)
    b = tiny_vae.encode(long_signal, rate, sample=True, noise=noise, chunked=True)
    np.testing.assert_allclose(b.numpy(), a.numpy(), atol=2e-6)


def test_chunked_encode_below_one_chunk_is_one_piece(tiny_vae, tiny_cases):
    audio = torch.from_numpy(tiny_cases["audio_odd"])
    frames = audio.shape[-1] // tiny_vae.downsampling_ratio
    chunk_seconds = (frames + 1) / tiny_vae.frame_rate
    assert torch.equal(tiny_vae.encode(audio, tiny_vae.sample_rate, chunked=True, chunk_seconds=chunk_seconds),
                       tiny_vae.encode(audio, tiny_vae.sample_rate))
