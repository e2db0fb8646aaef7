"""Small data writers and chat-turn builders for tests."""

from __future__ import annotations

from pathlib import Path


def write_jsonl(path: Path, records: list) -> Path:
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def chat_records(n: int = 24) -> list[dict]:
    """Varied two- and four-turn chats, some with a system turn."""
    out = []
    for i in range(n):
        msgs = [{"role": "system", "content": "Be brief."}] if i % 3 == 0 else []
        msgs += [
            {"role": "user", "content": f"What is {i} plus {i}?"},
            {"role": "assistant", "content": f"Answer: {2 * i}."},
        ]
        if i % 2:
            msgs += [
                {"role": "user", "content": "Thanks, and double it?"},
                {"role": "assistant", "content": f"Answer: {4 * i}."},
            ]
        out.append({"messages": msgs})
    return out


def write_recipe(path: Path, **sections) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(sections), encoding="utf-8")
    return path


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def system(text: str) -> dict:
    return {"role": "system", "content": text}
