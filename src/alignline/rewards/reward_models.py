"""Scoring with reward models (`alignline score`, and reward-model graders).

One or more reward models (helpfulness, safety, conciseness, ...) score prompt/response pairs; each
component stays visible in the output next to their weighted combination. Given preference records
(`prompt`/`chosen`/`rejected`), it scores both sides and reports pairwise accuracy per component.
Texts are rendered with the chat template and read at the last token, exactly as in training.
"""

from __future__ import annotations

import json
import sys

import torch

from alignline.data.formats import Message
from alignline.data.packing import collate_sequences
from alignline.data.preference import pair_sample, to_pairs
from alignline.data.sources import read_records
from alignline.data.templates import Example, shift_targets, tokenize_sample
from alignline.errors import ConfigError, DataError
from alignline.losses.reward import combine_rewards
from alignline.models.loading import load_model, load_tokenizer_for
from alignline.models.reward_model import RewardModel, last_non_pad


class RewardScorer:
    def __init__(self, model: str, max_length: int = 2048):
        self.tokenizer = load_tokenizer_for(model)
        self.model = RewardModel(load_model(model, kind="reward", pad_token_id=self.tokenizer.pad_token_id)).eval()
        self.max_length = max_length

    @torch.no_grad()
    def __call__(self, prompts: list, responses: list, batch_size: int = 8) -> list[float]:
        out = []
        pad = self.tokenizer.pad_token_id
        for s in range(0, len(prompts), batch_size):
            seqs = []
            for prompt, response in zip(prompts[s : s + batch_size], responses[s : s + batch_size]):
                ids, mask = tokenize_sample(self.tokenizer, pair_sample(prompt, response))
                ids, mask = ids[: self.max_length], mask[: self.max_length]
                seqs.append(Example(ids, shift_targets(ids, mask)))
            batch = collate_sequences(seqs, self.max_length, pad)
            batch["last_index"] = last_non_pad(batch["input_ids"], batch["last_index"], pad)
            out += self.model(**batch).tolist()
        return out


def parse_named(values: list[str], what: str) -> dict[str, str]:
    """`name=value` items (a bare value gets the name `reward`)."""
    named = {}
    for item in values:
        name, sep, value = item.partition("=")
        name, value = (name, value) if sep else ("reward", name)
        if name in named:
            raise ConfigError(f"{what} '{name}' given twice")
        named[name] = value
    return named


def _pairs_and_singles(path: str):
    """Preference records -> pairs; prompt/response records -> single responses to score."""
    pairs, singles = [], []
    for location, record in read_records(path):
        if "chosen" in record or "ranking" in record:
            pairs += to_pairs(record, path, location)
        elif "prompt" in record and ("response" in record or "completion" in record):
            response = record.get("response", record.get("completion"))
            singles.append((record["prompt"], response))
        else:
            raise DataError(
                path, "expected prompt/response (or completion), or prompt/chosen/rejected", record=location
            )
    return pairs, singles


def _messages(value, role: str) -> list[Message]:
    if isinstance(value, str):
        return [Message(role, value)]
    return [m if isinstance(m, Message) else Message(m["role"], m["content"]) for m in value]


def as_chat(prompt, response) -> tuple[list[Message], list[Message]]:
    """A prompt and a response as message lists: a string becomes a user (prompt) or assistant (response)
    turn; message dicts (TRL's conversational form) become `Message`s."""
    return _messages(prompt, "user"), _messages(response, "assistant")


def run_score(
    models: dict[str, str],
    weights: dict[str, float],
    input_path: str | None,
    prompt: str | None,
    response: str | None,
    out=sys.stdout,
) -> dict:
    if set(weights) - set(models):
        raise ConfigError(f"--weight names {sorted(set(weights) - set(models))} match no --model")
    weights = {name: weights.get(name, 1.0) for name in models}
    scorers = {name: RewardScorer(path) for name, path in models.items()}
    if input_path is None:
        p, r = as_chat(prompt, response)
        rewards = {name: s([p], [r])[0] for name, s in scorers.items()}
        combined = float(combine_rewards({k: torch.tensor(v) for k, v in rewards.items()}, weights))
        out.write(json.dumps({"rewards": rewards, "combined": combined}) + "\n")
        return {"rewards": rewards, "combined": combined}
    pairs, singles = _pairs_and_singles(input_path)
    summary: dict = {"pairs": len(pairs), "responses": len(singles), "weights": weights}
    if singles:
        prompts, responses = zip(*(as_chat(p, r) for p, r in singles))
        scores = {name: s(list(prompts), list(responses)) for name, s in scorers.items()}
        combined = combine_rewards({k: torch.tensor(v) for k, v in scores.items()}, weights).tolist()
        for i in range(len(singles)):
            out.write(
                json.dumps({"index": i, "rewards": {k: v[i] for k, v in scores.items()}, "combined": combined[i]})
                + "\n"
            )
    if pairs:
        chosen, rejected = {}, {}
        for name, s in scorers.items():
            chosen[name] = torch.tensor(s([p.prompt for p in pairs], [p.chosen for p in pairs]))
            rejected[name] = torch.tensor(s([p.prompt for p in pairs], [p.rejected for p in pairs]))
        chosen["combined"] = combine_rewards({k: chosen[k] for k in models}, weights)
        rejected["combined"] = combine_rewards({k: rejected[k] for k in models}, weights)
        summary["accuracy"] = {
            k: float(((chosen[k] > rejected[k]).float() + 0.5 * (chosen[k] == rejected[k]).float()).mean())
            for k in chosen
        }
        summary["mean_margin"] = {k: float((chosen[k] - rejected[k]).mean()) for k in chosen}
        for i, pair in enumerate(pairs):
            out.write(
                json.dumps(
                    {
                        "index": i,
                        "origin": pair.origin,
                        "chosen": {k: float(v[i]) for k, v in chosen.items()},
                        "rejected": {k: float(v[i]) for k, v in rejected.items()},
                    }
                )
                + "\n"
            )
    print(json.dumps({"summary": summary}), file=sys.stderr)
    return summary
