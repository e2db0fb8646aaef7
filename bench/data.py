"""The benchmark's data: chat conversations of 30 to 500 tokens, built deterministically from the demo set.

Lengths are drawn log-uniformly between the bounds (median about 120 tokens, a long tail to 500), the
right-skewed shape of real instruction data. Each conversation is a short system turn plus whole
user/assistant pairs from `data/demo/sft_train.jsonl`; the last pair is cut word by word to land on
the drawn length. Padding waste, where trainers differ, comes from exactly this spread.

Every contender trains on the same token ids: alignline reads the JSONL written here, and TRL and the
bare loop get `examples()`, alignline's own tokenization of that file.
"""

from __future__ import annotations

import json
import math
import random
import statistics
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "data" / "demo" / "sft_train.jsonl"
SYSTEMS = ["Be brief.", "Answer clearly.", "You are a careful assistant.", "Keep it short and exact."]


def _pairs() -> list[tuple[str, str]]:
    pairs = []
    for line in SOURCE.read_text(encoding="utf-8").splitlines():
        msgs = [m for m in json.loads(line)["messages"] if m["role"] != "system"]
        pairs += [
            (u["content"], a["content"])
            for u, a in zip(msgs[::2], msgs[1::2])
            if u["role"] == "user" and a["role"] == "assistant"
        ]
    return pairs


def _length(tokenizer, messages: list[dict]) -> int:
    from alignline.data.formats import to_sample
    from alignline.data.templates import tokenize_sample

    return len(tokenize_sample(tokenizer, to_sample({"messages": messages}, "bench", "0"))[0])


def _cut(tokenizer, head: list[dict], user: str, answer: str, limit: int) -> list[dict] | None:
    """head + the pair with its answer (then its question) cut to the most words that fit in `limit`."""
    u_words, a_words = user.split(), answer.split()

    def build(nu: int, na: int) -> list[dict]:
        return head + [
            {"role": "user", "content": " ".join(u_words[:nu])},
            {"role": "assistant", "content": " ".join(a_words[:na])},
        ]

    def largest(fits, hi: int) -> int:  # binary search: the largest n in [1, hi] with fits(n), or 0
        lo, best = 1, 0
        while lo <= hi:
            mid = (lo + hi) // 2
            if fits(mid):
                best, lo = mid, mid + 1
            else:
                hi = mid - 1
        return best

    na = largest(lambda n: _length(tokenizer, build(len(u_words), n)) <= limit, len(a_words))
    if na:
        return build(len(u_words), na)
    nu = largest(lambda n: _length(tokenizer, build(n, 1)) <= limit, len(u_words))
    return build(nu, 1) if nu else None


def conversations(tokenizer, n: int, seed: int = 0, low: int = 30, high: int = 500) -> list[dict]:
    rng = random.Random(seed)
    pairs = _pairs()
    records = []
    while len(records) < n:
        target = round(math.exp(rng.uniform(math.log(low), math.log(high))))
        messages = [{"role": "system", "content": rng.choice(SYSTEMS)}]
        while True:
            user, answer = rng.choice(pairs)
            longer = messages + [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
            if _length(tokenizer, longer) <= target:
                messages = longer
                continue
            cut = _cut(tokenizer, messages, user, answer, target)
            messages = cut or messages
            break
        if len(messages) > 1:
            records.append({"messages": messages})
    return records


def write_dataset(tokenizer, path: Path, n: int, seed: int = 0) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in conversations(tokenizer, n, seed)), encoding="utf-8")
    return path


def preference_pairs(tokenizer, n: int, seed: int = 1) -> list[dict]:
    """Preference pairs from the same conversations: the prompt is a conversation up to its last user
    turn, `chosen` its last answer, `rejected` the last answer of another conversation. Each of
    prompt+chosen and prompt+rejected spans 30 to 500 tokens, so the pair's two sequences differ in
    length as real pairs do."""
    convs = conversations(tokenizer, n + 8, seed)
    pairs = []
    for i, c in enumerate(convs[:n]):
        chosen = c["messages"][-1]
        # the next conversation whose answer differs (short answers repeat in the demo set)
        rejected = next(o["messages"][-1] for o in convs[i + 1 :] + convs[:i] if o["messages"][-1] != chosen)
        pairs.append({"prompt": c["messages"][:-1], "chosen": [chosen], "rejected": [rejected]})
    return pairs


def write_preference_dataset(tokenizer, path: Path, n: int, seed: int = 1) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in preference_pairs(tokenizer, n, seed)), encoding="utf-8")
    return path


def examples(tokenizer, path: str, max_length: int):
    """alignline's own tokenization of the file: token ids and pre-shifted targets per conversation."""
    from alignline.config import DataConfig, DataSource
    from alignline.data.dataset import prepare_data

    train, _, _ = prepare_data(DataConfig(train=[DataSource(str(path))]), tokenizer, max_length, seed=0, allowed=None)
    return train


def describe(exs) -> dict:
    lengths = sorted(len(e.input_ids) for e in exs)
    q = statistics.quantiles(lengths, n=10)
    total = sum(lengths)
    return {
        "examples": len(exs),
        "tokens": total,
        "target_tokens": sum(e.num_targets for e in exs),
        "length_min": lengths[0],
        "length_p10": q[0],
        "length_median": statistics.median(lengths),
        "length_mean": total / len(lengths),
        "length_p90": q[-1],
        "length_max": lengths[-1],
        # token-weighted mean length: the attention context an average token sees (for MFU)
        "context_mean": sum(n * n for n in lengths) / total,
    }
