"""Message-tree exports (OpenAssistant's flat `message_id` / `parent_id` / `role: prompter|assistant` /
`text` records) rebuilt into conversations, so no message is ever trained as raw text.

Each leaf's path from its root becomes one `{"messages": [...]}` record; trailing prompter turns (no
reply to learn) are dropped. Threads share their upper turns, so each assistant message is trained once,
in the first thread (file order, depth first) that reaches it, and is context (`weight: 0`) in the
others; a thread with nothing new to train is left out. Messages marked `deleted: true` are left out
with their replies. The rebuilt record's location is the leaf's, e.g. `record 9 (thread ending here)`.
"""

from __future__ import annotations

from collections.abc import Iterator

from alignline.errors import DataError

TREE_ROLES = {"prompter": "user", "user": "user", "assistant": "assistant", "system": "system"}


def is_message_tree(record: dict) -> bool:
    return all(k in record for k in ("message_id", "parent_id", "role", "text")) and "messages" not in record


def rebuild_threads(located: list[tuple[str, dict]], path: str) -> Iterator[tuple[str, dict]]:
    nodes: dict[str, tuple[str, dict]] = {}
    for loc, r in located:
        for key in ("message_id", "role", "text"):
            if not isinstance(r.get(key), str):
                raise DataError(
                    path,
                    f"expected a string, got {type(r.get(key)).__name__} (message-tree export)",
                    record=loc,
                    field=key,
                )
        if r["role"] not in TREE_ROLES:
            raise DataError(
                path, f"unknown role {r['role']!r}; allowed: {', '.join(TREE_ROLES)}", record=loc, field="role"
            )
        if r["message_id"] in nodes:
            raise DataError(
                path,
                f"message_id {r['message_id']!r} appears twice (first at {nodes[r['message_id']][0]})",
                record=loc,
                field="message_id",
            )
        nodes[r["message_id"]] = (loc, r)
    children: dict[str, list[str]] = {mid: [] for mid in nodes}
    roots = []
    for mid, (loc, r) in nodes.items():
        parent = r["parent_id"]
        if parent in (None, ""):
            roots.append(mid)
        elif parent not in nodes:
            raise DataError(
                path, f"parent_id {parent!r} is not a message_id in this file", record=loc, field="parent_id"
            )
        else:
            children[parent].append(mid)
    if len(roots) == 0 or sum(1 for _ in _walk(roots, children)) < len(nodes):
        loose = next(mid for mid in nodes if not _reaches_root(mid, nodes))
        raise DataError(
            path,
            "this message never reaches a root message (a parent_id cycle)",
            record=nodes[loose][0],
            field="parent_id",
        )
    trained: set[str] = set()
    for root in roots:
        stack = [[root]]  # iterative: a deep thread must not hit Python's recursion limit
        while stack:
            branch = stack.pop()
            if nodes[branch[-1]][1].get("deleted") is True:
                continue
            kids = [k for k in children[branch[-1]] if nodes[k][1].get("deleted") is not True]
            if kids:
                stack.extend(branch + [k] for k in reversed(kids))
                continue
            thread = list(branch)
            while thread and TREE_ROLES[nodes[thread[-1]][1]["role"]] != "assistant":
                thread.pop()
            new = [m for m in thread if TREE_ROLES[nodes[m][1]["role"]] == "assistant" and m not in trained]
            if not new:
                continue
            messages = []
            for m in thread:
                role = TREE_ROLES[nodes[m][1]["role"]]
                msg = {"role": role, "content": nodes[m][1]["text"]}
                if role == "assistant" and m in trained:
                    msg["weight"] = 0
                messages.append(msg)
            trained.update(new)
            yield f"{nodes[branch[-1]][0]} (thread ending here)", {"messages": messages}


def _walk(roots: list[str], children: dict[str, list[str]]) -> Iterator[str]:
    stack = list(roots)
    while stack:
        mid = stack.pop()
        yield mid
        stack.extend(children[mid])


def _reaches_root(mid: str, nodes: dict) -> bool:
    seen = set()
    while mid not in seen:
        seen.add(mid)
        parent = nodes[mid][1]["parent_id"]
        if parent in (None, ""):
            return True
        mid = parent
    return False
