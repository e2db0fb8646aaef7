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
        torch.testing.assert_close(token_logprobs(hidden, weight, targets, 2),
                                   token_logprobs_reference(hidden @ weight.T, targets))
