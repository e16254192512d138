"""Helpers shared by the fine-tuning tests: the tiny fixture model and a short training loop."""

from pathlib import Path

import torch

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "zipvoice_tiny"


def build_tiny(vocab_size: int = 46):
    """The fixture's ZipVoice architecture with random weights and ``vocab_size`` tokens."""
    from zipvoice.models import build_model, read_config

    torch.manual_seed(0)
    return build_model(read_config(FIXTURE / "model.json")["model"], vocab_size, 0)


def random_batches(vocab_size: int, n: int, seed: int = 1):
    """``n`` training batches ``(tokens, features, features_lens, noise, t)`` of 2 utterances."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n):
        lens = torch.tensor([24, 17])
        tokens = [torch.randint(1, vocab_size, (int(k),), generator=g).tolist() for k in (9, 6)]
        features = 0.3 * torch.randn(2, 24, 100, generator=g)
        noise = torch.randn(2, 24, 100, generator=g)
        t = torch.rand(2, 1, 1, generator=g)
        batches.append((tokens, features, lens, noise, t))
    return batches


def train_steps(model, batches, lr: float = 1e-2) -> list[float]:
    """AdamW (no weight decay) on the trainable parameters, one step per batch; returns the losses."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    for tokens, features, lens, noise, t in batches:
        opt.zero_grad()
        loss = model(tokens, features, lens, noise, t)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses


def snapshot(model) -> dict[str, torch.Tensor]:
    """A copy of every parameter, by name."""
    return {n: p.detach().clone() for n, p in model.named_parameters()}

