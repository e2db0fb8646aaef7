"""Packing: rows fit, the plan is reproducible, and packed examples do not see each other."""

import torch

from alignline.data.packing import BatchPlan, collate, pack_rows
from alignline.data.templates import IGNORE, Example
from alignline.models.logprob_model import TokenLogprobModel
from support import tiny_llama


def test_best_fit_decreasing_fits_and_keeps_every_example():
    lengths = [50, 30, 70, 20, 10, 100, 60, 40]
    rows = pack_rows(lengths, 100)
    assert sorted(i for r in rows for i in r) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in r) <= 100 for r in rows)
    assert len(rows) == 4  # 380 tokens: the fewest rows of 100 possible


def test_plan_is_a_pure_function_of_seed_and_step():
    plan = BatchPlan([[i] for i in range(10)], [5] * 10, batch_size=3, seed=7)
    again = BatchPlan([[i] for i in range(10)], [5] * 10, batch_size=3, seed=7)
    assert [plan.batch(k) for k in range(9)] == [again.batch(k) for k in (range(9))]
    assert plan.batch(0) != BatchPlan([[i] for i in range(10)], [5] * 10, 3, seed=8).batch(0)
    epoch0 = sorted(i for b in plan.epoch(0) for r in b for i in r)
    assert epoch0 == list(range(10))


def _example(ids):
    return Example(ids, ids[1:] + [IGNORE])


def test_packed_rows_equal_separate_examples():
    """Log-probs of each example are the same packed in one row as alone: no attention across examples."""
    torch.manual_seed(0)
    model = TokenLogprobModel(tiny_llama(64, hidden=32, layers=2)).eval()
    examples = [_example(torch.randint(0, 64, (n,)).tolist()) for n in (7, 5, 9)]
    packed = collate(examples, [[0, 1, 2]], pad_id=0)
    assert packed["position_ids"][0].tolist() == list(range(7)) + list(range(5)) + list(range(9))
    with torch.no_grad():
        together = model(**packed)
        alone = torch.cat([model(**collate(examples, [[i]], pad_id=0)) for i in range(3)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_right_padding_does_not_change_results():
    torch.manual_seed(0)
    model = TokenLogprobModel(tiny_llama(64)).eval()
    examples = [_example(torch.randint(0, 64, (n,)).tolist()) for n in (4, 11)]
    batch = collate(examples, [[0], [1]], pad_id=0)
    assert batch["input_ids"].shape == (2, 11) and (batch["targets"][0, 4:] == IGNORE).all()
    with torch.no_grad():
        torch.testing.assert_close(
            model(**batch), torch.cat([model(**collate(examples, [[i]], 0)) for i in (0, 1)]), atol=1e-5, rtol=1e-5
        )
