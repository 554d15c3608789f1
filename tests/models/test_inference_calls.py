"""A model from create_model is for inference: its calls record no gradients; train() turns them back on."""
from __future__ import annotations

import torch

from tests.helpers import demo_wave


def test_an_eval_model_returns_outputs_without_gradients_that_numpy_takes(mn04):
    wave = torch.from_numpy(demo_wave(32000)[: 32000 * 2]).unsqueeze(0)
    assert not mn04.training and torch.is_grad_enabled()
    out = mn04(wave)
    for t in (out.logits, out.embedding):
        assert not t.requires_grad and t.grad_fn is None
    assert out.embedding.numpy().shape == (1, 384)
    # the outputs are ordinary tensors: a trainable head of one's own can learn from them
    head = torch.nn.Linear(384, 2)
    head(out.embedding).sum().backward()
    assert head.weight.grad is not None


def test_train_mode_records_gradients_for_fine_tuning():
    from streamtag import create_model
    model = create_model("mn04_as", pretrained=False)
    wave = torch.zeros(1, 32000)
    assert not model(wave).embedding.requires_grad
    model.requires_grad_(True)
    assert not model(wave).embedding.requires_grad  # still in eval mode: an inference call
    model.train()
    assert model(wave).embedding.requires_grad
    model.eval()
    assert not model(wave).embedding.requires_grad
