"""Episodes of several turns: the policy and an environment taking turns, batched across episodes.

At each turn every live episode renders its conversation so far (the model's chat template, its tools,
the generation prompt; `data/templates.py` decides how tools and tool results are written) and all of
them generate their next assistant turn in ONE `engine.generate` call. Each reply goes to its
environment's `step`; the observation (tool results as `tool` messages, or a user message) is appended.
An episode ends when its environment terminates it or after `max_turns` policy turns (truncated).

The policy's reply is kept as the text it wrote (tool calls included, in the template's tool-call
format), not re-rendered from parsed `tool_calls`: a template re-rendering the calls could change their
spacing or key order, and the loss must be on what the policy generated.

For the loss, each episode's whole conversation is tokenized once with `tokenize_sample` (assistant
turns the policy wrote trained, every other message context): `mask` is True on the policy's own
tokens only. The ids of each policy turn are then checked against the engine's generated ids; where
they differ (the decoded text re-tokenizes differently, or the engine produced special tokens that
decoding drops), the generated ids replace the rendered ones, since those are the tokens whose
log-probs the generator reported (`Episode.retokenized` counts such turns). A turn that hit
max_new_tokens without an end-of-turn token keeps the template's end-of-turn token as context
(mask False): the policy did not generate it. The next turn's prompt is the re-rendered text, so in a
retokenized episode the context seen at generation and in training differ by that re-tokenization.

Groups: `params.n > 1` runs n episodes per task (GRPO's group), `Episode.group` = the task's index,
each turn generating with n = 1 and seed `params.seed + turn` (every row draws its own sample).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from alignline.data.formats import Conversation, Where, parse_messages
from alignline.data.templates import CHATML_TEMPLATE, template_messages, tokenize_sample
from alignline.errors import DataError
from alignline.rollout.env import Env
from alignline.rollout.tools import parse_tool_calls, valid_call
from alignline.rollout.types import Completion, Engine, SamplingParams


@dataclass
class Episode:
    task: dict
    group: int
    """Index of the task in `tasks` (episodes of one task share it)."""
    messages: list[dict]
    """The conversation, OpenAI shape: opening messages, then assistant replies and observations."""
    tools: list[dict] | None
    policy_turns: list[int] = field(default_factory=list)
    """Indices in `messages` of the assistant replies the policy generated."""
    completions: list[Completion] = field(default_factory=list)
    turn_rewards: list[float] = field(default_factory=list)
    infos: list[dict] = field(default_factory=list)
    """`step`'s info of each turn."""
    terminated: bool = False
    truncated: bool = False
    input_ids: list[int] = field(default_factory=list)
    """(T,) the rendered conversation's token ids, the policy's turns as generated."""
    mask: list[bool] = field(default_factory=list)
    """(T,) True exactly on tokens the policy generated."""
    logprobs: list[float] | None = None
    """(T,) the generator's log-prob of each policy token, 0.0 off the mask; None unless asked."""
    retokenized: int = 0
    """Policy turns whose rendered ids differed from the generated ones (generated ids kept)."""

    @property
    def reward(self) -> float:
        return float(sum(self.turn_rewards))

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated


def render_for_generation(tokenizer, messages: list[dict], tools: list[dict] | None) -> str:
    """The conversation so far through the chat template with the generation prompt, tools and tool
    results written as `tokenize_sample` writes them (so the prompt is a prefix of the training text)."""
    if tokenizer.chat_template is None:
        tokenizer.chat_template = CHATML_TEMPLATE  # as tokenize_sample does
    rendered, tools_arg = template_messages(tokenizer, to_conversation(messages, tools, []))
    return tokenizer.apply_chat_template(rendered, tools=tools_arg, tokenize=False, add_generation_prompt=True)


def to_conversation(messages: list[dict], tools: list[dict] | None, policy_turns: list[int]) -> Conversation:
    msgs = parse_messages(messages, Where("episode", "conversation"), "messages")
    for i, m in enumerate(msgs):
        m.train = i in policy_turns  # an assistant turn in the task's prompt (few-shot) is context
    return Conversation(msgs, origin="episode", tools=tools)


def run_episodes(
    engine: Engine, env_factory: Callable[[], Env], tasks: Sequence[dict], params: SamplingParams, max_turns: int
) -> list[Episode]:
    """Run one episode per task (`params.n` per task), all live ones generating together each turn."""
    if max_turns < 1:
        raise ValueError("max_turns must be at least 1")
    n = max(1, params.n)
    episodes, envs = [], []
    for g, task in enumerate(tasks):
        for k in range(n):
            env = env_factory()
            observation, info = env.reset(seed=params.seed + g * n + k, **task)
            episodes.append(Episode(task=task, group=g, messages=list(observation), tools=info.get("tools")))
            envs.append(env)
    for turn in range(max_turns):
        live = [i for i, e in enumerate(episodes) if not e.done]
        if not live:
            break
        prompts = [render_for_generation(engine.tokenizer, episodes[i].messages, episodes[i].tools) for i in live]
        results = engine.generate(prompts, replace(params, n=1, seed=params.seed + turn))
        for i, result in zip(live, results):
            e, completion = episodes[i], result[0]
            e.policy_turns.append(len(e.messages))
            e.messages.append({"role": "assistant", "content": completion.text})
            e.completions.append(completion)
            observation, reward, terminated, truncated, info = envs[i].step(completion.text)
            e.messages.extend(observation)
            e.turn_rewards.append(float(reward))
            e.infos.append(info)
            e.terminated, e.truncated = bool(terminated), bool(truncated)
            if not e.done and turn == max_turns - 1:
                e.truncated = True
    for e in episodes:
        build_tokens(engine.tokenizer, e, params.logprobs)
    return episodes


def build_tokens(tokenizer, episode: Episode, with_logprobs: bool) -> None:
    """Fill `input_ids`, `mask`, `logprobs` (see the module docstring)."""
    sample = to_conversation(episode.messages, episode.tools, episode.policy_turns)
    rendered_ids, rendered_mask = tokenize_sample(tokenizer, sample)
    runs = mask_runs(rendered_mask)
    if len(runs) != len(episode.completions):
        raise DataError(
            "episode",
            f"the chat template rendered {len(runs)} trained spans for "
            f"{len(episode.completions)} policy turns, so the policy's tokens cannot be found",
        )
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    mask: list[bool] = []
    logps: list[float] = []
    position = 0
    for (start, end), completion in zip(runs, episode.completions):
        ids += rendered_ids[position:start]
        mask += [False] * (start - position)
        logps += [0.0] * (start - position)
        generated = list(completion.token_ids)
        ended = bool(generated) and generated[-1] == eos
        if rendered_ids[start:end] != (generated if ended else generated + [eos]):
            episode.retokenized += 1
        ids += generated
        mask += [True] * len(generated)
        logps += (
            list(completion.logprobs) if with_logprobs and completion.logprobs is not None else [0.0] * len(generated)
        )
        if not ended:  # the template's end of turn, which the policy never generated
            ids.append(eos)
            mask.append(False)
            logps.append(0.0)
        position = end
    ids += rendered_ids[position:]
    mask += [False] * (len(rendered_ids) - position)
    logps += [0.0] * (len(rendered_ids) - position)
    episode.input_ids, episode.mask = ids, mask
    has_logprobs = with_logprobs and all(c.logprobs is not None for c in episode.completions)
    episode.logprobs = logps if has_logprobs else None


def mask_runs(mask: list[bool]) -> list[tuple[int, int]]:
    """`[start, end)` of each run of True.

    >>> mask_runs([False, True, True, False, True])
    [(1, 3), (4, 5)]
    """
    runs, start = [], None
    for i, m in enumerate([*mask, False]):
        if m and start is None:
            start = i
        elif not m and start is not None:
            runs.append((start, i))
            start = None
    return runs


def episode_metrics(episodes: Sequence[Episode]) -> dict[str, float]:
    """Shares over episodes: `tool_call_rate` (at least one well-formed call: a known tool name and its
    required arguments, parsed), `correct_rate` (the final step's info says `correct`), `truncated_rate`;
    means: `reward`, `turns`, `tool_calls` (well-formed calls per episode)."""
    if not episodes:
        return {}
    calls = [
        sum(valid_call(c, e.tools) for i in e.policy_turns for c in parse_tool_calls(e.messages[i]["content"]))
        for e in episodes
    ]
    count = len(episodes)
    return {
        "tool_call_rate": sum(c > 0 for c in calls) / count,
        "correct_rate": sum(bool(e.infos and e.infos[-1].get("correct")) for e in episodes) / count,
        "truncated_rate": sum(e.truncated for e in episodes) / count,
        "reward": sum(e.reward for e in episodes) / count,
        "turns": sum(len(e.policy_turns) for e in episodes) / count,
        "tool_calls": sum(calls) / count,
    }
