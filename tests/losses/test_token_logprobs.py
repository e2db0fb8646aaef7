"""The chunked log-prob function equals log_softmax + gather, in value and in gradient."""

import pytest
import torch

from alignline.losses.token_logprobs import token_logprobs, token_logprobs_reference


@pytest.mark.parametrize("train_weight", [False, True], ids=["frozen-head", "trained-head"])
def test_matches_reference_values_and_grads(train_weight):
    torch.manual_seed(0)
    n, h, v = 37, 16, 50
    hidden = torch.randn(n, h, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(v, h, dtype=torch.float64, requires_grad=train_weight)
    targets = torch.randint(0, v, (n,))
    upstream = torch.randn(n, dtype=torch.float64)

    got = token_logprobs(hidden, weight, targets, chunk_size=8)
    (got.double() * upstream).sum().backward()
    grads = hidden.grad.clone(), (weight.grad.clone() if train_weight else None)
    hidden.grad = None
    weight.grad = None

    want = token_logprobs_reference(hidden @ weight.T, targets)
    (want.double() * upstream).sum().backward()
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grads[0], hidden.grad, atol=1e-5, rtol=1e-5)
    if train_weight:
        torch.testing.assert_close(grads[1], weight.grad, atol=1e-5, rtol=1e-5)


def test_no_grad_path():
    hidden, weight = torch.randn(5, 4), torch.randn(9, 4)
    targets = torch.tensor([0, 3, 8, 1, 1])
    with torch.no_grad():
        torch.testing.assert_close(
            token_logprobs(hidden, weight, targets, 2), token_logprobs_reference(hidden @ weight.T, targets)
        )


@pytest.mark.parametrize("train", ["none", "weight", "bias"])
@pytest.mark.parametrize(
    "scale,softcap",
    [(1.0, None), (0.0625, None), (4.0, 3.0), (1.0, 0.5)],
    ids=["plain", "scaled", "scaled-capped", "capped"],
)
def test_bias_scale_and_softcap_match_reference(train, scale, softcap):
    """The output heads of Phi (bias), Cohere and Granite (scale) and Gemma 2 (softcap): the reference is
    the architecture's own formula, softcap(scale * (h W^T + b)) written out, then log_softmax + gather."""
    torch.manual_seed(1)
    n, h, v = 29, 12, 40
    hidden = torch.randn(n, h, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(v, h, dtype=torch.float64, requires_grad=train == "weight")
    bias = torch.randn(v, dtype=torch.float64, requires_grad=train == "bias")
    targets = torch.randint(0, v, (n,))
    upstream = torch.randn(n, dtype=torch.float64)
    params = [hidden] + [p for p in (weight, bias) if p.requires_grad]

    got = token_logprobs(hidden, weight, targets, chunk_size=8, bias=bias, scale=scale, softcap=softcap)
    got_grads = torch.autograd.grad((got.double() * upstream).sum(), params)
    z = scale * (hidden @ weight.T + bias)
    want = token_logprobs_reference(softcap * torch.tanh(z / softcap) if softcap else z, targets)
    want_grads = torch.autograd.grad((want.double() * upstream).sum(), params)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    for a, b in zip(got_grads, want_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
