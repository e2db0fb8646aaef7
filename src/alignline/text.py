"""The text of a completion and of a prompt, in whatever shape they come: the one implementation of each.

A completion is a string, TRL's conversational message list (`[{"role": "assistant", "content": ...}]`),
one message dict, or an engine `Completion` (anything with a `.text`). A prompt is a string or a message
list. Graders (`rewards/`), the canary check (`data/canary.py`) and judges read them through these two
functions, so every part of the line agrees on what "the text" is.
"""

from __future__ import annotations


def completion_text(completion) -> str:
    """The text of one completion: a string as it is; a message list (TRL's conversational form) as the
    content of its assistant messages, joined by newlines; a message dict or an engine `Completion` as its text.

    >>> completion_text([{"role": "assistant", "content": "Paris"}])
    'Paris'
    >>> completion_text("Paris")
    'Paris'
    """
    if isinstance(completion, str):
        return completion
    if completion is None:
        return ""
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    if isinstance(completion, (list, tuple)):
        turns = [m for m in completion if isinstance(m, dict)]
        spoken = [m for m in turns if m.get("role", "assistant") == "assistant"] or turns
        return "\n".join(str(m.get("content", "")) for m in spoken)
    text = getattr(completion, "text", None)  # an engine Completion (rollout)
    return text if isinstance(text, str) else str(completion)


def prompt_text(prompt) -> str:
    """A prompt as text: a string as it is; a message list as `role: content` lines (for judge templates).

    >>> prompt_text([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    'system: Be brief.\\nuser: Hi'
    """
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, (list, tuple)):
        if len(prompt) == 1 and isinstance(prompt[0], dict):
            return str(prompt[0].get("content", ""))
        return "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in prompt if isinstance(m, dict))
    return "" if prompt is None else str(prompt)


def last_user_turn(prompt) -> str:
    """What the user last said, for reports and coverage: a string as it is; of a message list (dicts, or
    objects with `role` and `content`), the content of its last user message ("" when there is none).

    >>> last_user_turn([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    'Hi'
    """
    if isinstance(prompt, str):
        return prompt
    for m in reversed(list(prompt or ())):
        role, content = (m.get("role"), m.get("content")) if isinstance(m, dict) else (m.role, m.content)
        if role == "user":
            return str(content)
    return ""
