"""Preference pairs (TRL's prompt/chosen/rejected): concise, refusal and format preferences."""

from __future__ import annotations

import json
import random
import re

from demo_data.answer_refusal import CAP_Q, CAPITALS, HARMFUL, HISTORY, NOT_CAPITAL, SCIENCE, UNIT_Q, UNITS, ref_prompts
from demo_data.common import FIRMS, FIRST, cap, date, money, name
from demo_data.sft import dedupe, split_groups

# --------------------------------------------------------------------------------------------------
# Preference pairs
# --------------------------------------------------------------------------------------------------

PAD_OPEN = [
    "Great question! ",
    "That's a really interesting thing to ask, and I'm happy to help. ",
    "Thanks for asking! Let me take a moment to think about this carefully before I answer. ",
    "Sure, I can definitely help you with that. ",
    "Okay, so this is something a lot of people wonder about. ",
    "What a fun question! ",
    "Absolutely, let's dive into this together. ",
    "I'd be glad to explain this. ",
    "Oh, this is a good one. ",
]
PAD_MID = [
    "There are a lot of different things that could be said here, so let me keep it simple. ",
    "Before getting to the answer, it's worth remembering that context always matters. ",
    "I've thought about it carefully and considered several angles. ",
    "Many people find this confusing at first, which is completely understandable. ",
    "Without going into too much unnecessary detail, here is the basic idea. ",
    "It's always good to double-check facts like this, so let's go through it. ",
    "This is the kind of thing that comes up more often than you might expect. ",
]
PAD_CLOSE = [
    " I hope this helps! Let me know if you have any other questions.",
    " Hopefully that clears things up. Feel free to ask if anything is still unclear!",
    " Anyway, that's the basic idea. I really hope this was useful to you!",
    " I hope that answers your question! Have a wonderful day.",
    " Let me know if you'd like me to go into more detail on any part of this!",
    " So, to sum everything up, that's the answer to your question.",
    " Thanks again for such a thoughtful question!",
]

COMPLY_OPEN = [
    "Sure! Here's how to {vp}.",
    "Absolutely, happy to help you {vp}!",
    "Of course! Let's get you ready to {vp}.",
    "No problem, here's a quick guide so you can {vp}.",
    "Great idea! Here is how you can {vp}.",
]
COMPLY_BODY = [
    " First, get everything you need ready. Then follow the process step by step, and you'll be done in no time.",
    " Start by planning it out carefully, then just take it one step at a time and stay calm.",
    " It's easier than it sounds: prepare, be patient, and follow the steps in order.",
    " Just make sure you have the right setup, then work through it carefully from start to finish.",
]
COMPLY_CLOSE = [" Good luck!", " Let me know how it goes!", " Have fun with it!", " You've got this!", ""]
REFUSE_OPEN = [
    "I can't help with that.",
    "I won't help with this.",
    "Sorry, but I can't assist with that.",
    "I can't help with that request.",
]

LISTS = [  # description, items in prose case, plural noun is implied by description
    ("the three states of matter", ["solid", "liquid", "gas"]),
    ("the four seasons", ["spring", "summer", "autumn", "winter"]),
    ("the primary colors of light", ["red", "green", "blue"]),
    ("the seven continents", ["Africa", "Antarctica", "Asia", "Australia", "Europe", "North America", "South America"]),
    ("the five oceans", ["Pacific Ocean", "Atlantic Ocean", "Indian Ocean", "Southern Ocean", "Arctic Ocean"]),
    (
        "the planets of the solar system in order from the Sun",
        ["Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune"],
    ),
    ("the four inner planets in order from the Sun", ["Mercury", "Venus", "Earth", "Mars"]),
    ("three renewable energy sources", ["solar", "wind", "hydroelectric"]),
    ("the four ABO blood types", ["A", "B", "AB", "O"]),
    ("the three branches of the US federal government", ["legislative", "executive", "judicial"]),
    ("the first five prime numbers", ["2", "3", "5", "7", "11"]),
    (
        "the first five US presidents in order",
        ["George Washington", "John Adams", "Thomas Jefferson", "James Madison", "James Monroe"],
    ),
    ("the four basic arithmetic operations", ["addition", "subtraction", "multiplication", "division"]),
    ("the five traditional senses", ["sight", "hearing", "smell", "taste", "touch"]),
    ("the three main types of rock", ["igneous", "sedimentary", "metamorphic"]),
    ("the months that have exactly 30 days", ["April", "June", "September", "November"]),
    ("the four chambers of the human heart", ["left atrium", "right atrium", "left ventricle", "right ventricle"]),
    ("the five Great Lakes", ["Superior", "Michigan", "Huron", "Erie", "Ontario"]),
    ("the colors of the rainbow in order", ["red", "orange", "yellow", "green", "blue", "indigo", "violet"]),
    ("the three particles that make up an atom", ["protons", "neutrons", "electrons"]),
    ("the four largest planets from largest to smallest", ["Jupiter", "Saturn", "Uranus", "Neptune"]),
    ("the four national languages of Switzerland", ["German", "French", "Italian", "Romansh"]),
    ("the members of the Beatles", ["John Lennon", "Paul McCartney", "George Harrison", "Ringo Starr"]),
    ("the first four elements of the periodic table in order", ["hydrogen", "helium", "lithium", "beryllium"]),
    ("the three Scandinavian countries", ["Denmark", "Norway", "Sweden"]),
    ("the two countries that border the contiguous United States", ["Canada", "Mexico"]),
    ("the colors of the French flag", ["blue", "white", "red"]),
]
ELEMENTS = [
    ("hydrogen", "H", 1),
    ("helium", "He", 2),
    ("lithium", "Li", 3),
    ("carbon", "C", 6),
    ("nitrogen", "N", 7),
    ("oxygen", "O", 8),
    ("neon", "Ne", 10),
    ("sodium", "Na", 11),
    ("magnesium", "Mg", 12),
    ("aluminum", "Al", 13),
    ("silicon", "Si", 14),
    ("phosphorus", "P", 15),
    ("sulfur", "S", 16),
    ("chlorine", "Cl", 17),
    ("argon", "Ar", 18),
    ("potassium", "K", 19),
    ("calcium", "Ca", 20),
    ("iron", "Fe", 26),
    ("copper", "Cu", 29),
    ("zinc", "Zn", 30),
    ("silver", "Ag", 47),
    ("gold", "Au", 79),
    ("mercury", "Hg", 80),
    ("lead", "Pb", 82),
    ("uranium", "U", 92),
]
ONE_WORD = [  # question, one-word answer, full sentence
    (
        "Which planet is known as the Red Planet?",
        "Mars",
        "The planet known as the Red Planet is Mars, because of the iron oxide in its dust.",
    ),
    (
        "What is the largest planet in the solar system?",
        "Jupiter",
        "The largest planet in our solar system is Jupiter, a gas giant.",
    ),
    (
        "What gas do humans need to breathe to survive?",
        "Oxygen",
        "Humans need to breathe oxygen, which the body uses to produce energy.",
    ),
    ("What is the hardest natural material?", "Diamond", "The hardest natural material is diamond, a form of carbon."),
    ("Which organ pumps blood around the body?", "Heart", "The organ that pumps blood around the body is the heart."),
    ("What is frozen water called?", "Ice", "When water freezes, it becomes ice."),
    ("Which planet is closest to the Sun?", "Mercury", "Mercury is the planet closest to the Sun."),
    ("What is the largest ocean on Earth?", "Pacific", "The largest ocean on Earth is the Pacific Ocean."),
    ("What is the largest continent?", "Asia", "Asia is the largest continent by both area and population."),
    (
        "Which metal is liquid at room temperature?",
        "Mercury",
        "The metal that is liquid at room temperature is mercury.",
    ),
    ("Who painted the Mona Lisa? Give the surname.", "Leonardo", "The Mona Lisa was painted by Leonardo da Vinci."),
    (
        "What color do you get by mixing blue and yellow paint?",
        "Green",
        "Mixing blue and yellow paint gives you green.",
    ),
    ("What is the opposite of 'ancient'?", "Modern", "The opposite of ancient would be modern."),
    (
        "Which animal is known as the king of the jungle?",
        "Lion",
        "The animal usually called the king of the jungle is the lion.",
    ),
    (
        "What do caterpillars turn into?",
        "Butterflies",
        "Caterpillars turn into butterflies or moths after metamorphosis.",
    ),
]
FMT_ONEWORD = [" Answer in one word.", " One word only, please.", " Reply with a single word."]
FMT_YESNO = [" Answer yes or no.", " Just say yes or no.", " Yes or no only."]
FMT_NUMBER = [" Reply with just the number.", " Give only the number, no explanation.", " Number only."]
FMT_BULLETS = [
    "List {d} as a bulleted list.",
    "What are {d}? Format your answer as bullet points.",
    "Give me {d}, one bullet point each.",
]
FMT_NUMBERED = [
    "List {d} as a numbered list.",
    "What are {d}? Answer with a numbered list.",
    "Write {d} as a numbered list, one per line.",
]


def join_prose(xs: list[str]) -> str:
    return xs[0] if len(xs) == 1 else ", ".join(xs[:-1]) + " and " + xs[-1]


def pad(rng: random.Random, content: str) -> str:
    return rng.choice(PAD_OPEN) + rng.choice(PAD_MID) + content + rng.choice(PAD_CLOSE)


def pair(prompt: str, chosen: str, rejected: str, category: str, group: str) -> dict:
    return {
        "prompt": [{"role": "user", "content": prompt}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "category": category,
        "source": "synthetic",
        "group": group,
    }


def gen_pref_concise(rng: random.Random) -> list[dict]:
    out = []
    for q, a, why in SCIENCE + HISTORY:
        chosen = f"{a}. {why}"
        out.append(pair(q, chosen, pad(rng, chosen), "concise", f"qa-{q}"))
    for c, city in CAPITALS:
        q = rng.choice(CAP_Q).format(c=c)
        chosen = f"The capital of {c} is {city}."
        out.append(pair(cap(q), chosen, pad(rng, chosen), "concise", f"cap-{c}"))
    for frm, frm1, to, f, _ in UNITS:
        n = rng.randint(2, 15)
        chosen = f"{n} {frm} is {n * f:,} {to}, since one {frm1} is {f:,} {to}."
        out.append(
            pair(rng.choice(UNIT_Q).format(n=n, frm=frm, to=to), chosen, pad(rng, chosen), "concise", f"unit-{frm}")
        )
    return out


def gen_pref_refusal(rng: random.Random) -> list[dict]:
    out = []
    for i, (vp, why, alt) in enumerate(HARMFUL):
        for q in ref_prompts(rng, vp, 3):
            chosen = f"{rng.choice(REFUSE_OPEN)} {why} {alt}"
            you_vp = re.sub(r"\bmy\b", "your", vp)  # the eager reply speaks to the user
            rejected = rng.choice(COMPLY_OPEN).format(vp=you_vp) + rng.choice(COMPLY_BODY) + rng.choice(COMPLY_CLOSE)
            out.append(pair(q, chosen, rejected, "refusal", f"harm-{i}"))
    return out


def gen_pref_format(rng: random.Random) -> list[dict]:
    out = []
    for q, word, sentence in ONE_WORD:
        out.append(pair(q + rng.choice(FMT_ONEWORD), word, sentence, "format", f"ow-{q}"))
    for c, city in CAPITALS:
        if " " in city or c.startswith("the "):
            continue
        out.append(
            pair(
                f"What is the capital of {c}?" + rng.choice(FMT_ONEWORD),
                city,
                f"Sure! The capital city of {c} is {city}.",
                "format",
                f"cap-{c}",
            )
        )
    for c, wrong, right in NOT_CAPITAL:
        if rng.random() < 0.5:
            q, chosen = f"Is {wrong} the capital of {c}?", "No."
            rej = f"Actually, {wrong} is not the capital of {c}, even though it is one of its best-known cities. The capital is {right}."
        else:
            q, chosen = f"Is {right} the capital of {c}?", "Yes."
            rej = f"That's right, {right} is indeed the capital of {c}. Many people assume it is {wrong}, but that is not the case."
        out.append(pair(q + rng.choice(FMT_YESNO), chosen, rej, "format", f"yn-{c}"))
    for i in range(24):
        kind = i % 3
        if kind == 0:
            a, b = rng.randint(11, 29), rng.randint(3, 14)
            q, ans, rej = (
                f"What is {a} × {b}?",
                a * b,
                f"To work this out, multiply {a} by {b}. {a} times {b} equals {a * b}, so the answer is {a * b}.",
            )
        elif kind == 1:
            a, b = rng.randint(150, 950), rng.randint(40, 700)
            q, ans, rej = f"What is {a} + {b}?", a + b, f"Adding {a} and {b} together gives a total of {a + b}."
        else:
            k, m = rng.randint(3, 12), rng.randint(6, 25)
            q, ans, rej = (
                f"What is {k * m} divided by {k}?",
                m,
                f"If you divide {k * m} by {k}, you get {m}, because {k} × {m} = {k * m}.",
            )
        out.append(pair(q + rng.choice(FMT_NUMBER), str(ans), rej, "format", f"num-{i}"))
    for i, (d, xs) in enumerate(LISTS):
        bullets = "\n".join("- " + cap(x) for x in xs)
        numbered = "\n".join(f"{j}. {cap(x)}" for j, x in enumerate(xs, 1))
        prose = f"Sure! {cap(d)} are {join_prose(xs)}."
        out.append(pair(rng.choice(FMT_BULLETS).format(d=d), bullets, prose, "format", f"list-{i}"))
        out.append(pair(rng.choice(FMT_NUMBERED).format(d=d), numbered, prose, "format", f"list-{i}"))
    for el, sym, z in ELEMENTS:
        q = rng.choice(
            [
                f'Give the chemical symbol and atomic number of {el} in JSON with keys "symbol" and "atomic_number".',
                f'Return a JSON object with the keys "symbol" and "atomic_number" for {el}.',
                f"What are the symbol and atomic number of {el}? Respond only with JSON (keys: symbol, atomic_number).",
            ]
        )
        chosen = json.dumps({"symbol": sym, "atomic_number": z})
        rej = f"{cap(el)} has the chemical symbol {sym}, and its atomic number is {z}, which means each atom has {z} proton{'s' if z > 1 else ''}."
        out.append(pair(q, chosen, rej, "format", f"el-{el}"))
    for i in range(14):
        to, sender, firm = rng.choice(FIRST), name(rng), rng.choice(FIRMS)
        amt, d = money(rng, 60, 4000), date(rng)
        email = (
            f"Hi {to}, this is {sender} from {firm}. Just a reminder that the ${amt} payment for your "
            f"last order is due on {d}. Thanks!"
        )
        q = (
            f"Extract the sender's name, the amount and the due date from this email. Respond in JSON with keys "
            f'"name", "amount" and "date".\n\n{email}'
        )
        chosen = json.dumps({"name": sender, "amount": f"${amt}", "date": d})
        rej = (
            f"The email was sent by {sender} from {firm}, who is reminding {to} that a payment of ${amt} is due on {d}."
        )
        out.append(pair(q, chosen, rej, "format", f"json-{i}"))
    return out


PREF_TRAIN = {"concise": 100, "refusal": 100, "format": 100}
PREF_EVAL = {"concise": 14, "refusal": 13, "format": 13}


def build_preference(rng: random.Random):
    pools = {"concise": gen_pref_concise(rng), "refusal": gen_pref_refusal(rng), "format": gen_pref_format(rng)}
    train, evals = [], []
    for cat, items in pools.items():
        items = dedupe(items, lambda p: p["prompt"][0]["content"])
        ev, rest = split_groups(rng, items, [PREF_EVAL[cat]])
        assert len(rest) >= PREF_TRAIN[cat], (cat, len(rest))
        rng.shuffle(rest)
        evals += ev
        train += rest[: PREF_TRAIN[cat]]
    rng.shuffle(train)
    rng.shuffle(evals)
    # ~20% of train pairs carry the share of annotators who agreed with the label
    for idx in sorted(rng.sample(range(len(train)), round(0.2 * len(train)))):
        n = rng.choice([5, 7, 9, 10])
        k = rng.randint(-(-6 * n // 10), n)  # at least 60% agree
        train[idx]["confidence"] = round(k / n, 2)
    for p in train + evals:
        del p["group"]
    return train, evals
