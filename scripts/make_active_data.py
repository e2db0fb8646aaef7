"""Write data/demo/active_pool.jsonl and active_test.jsonl: labelled pairs for the active-learning simulation.

    python scripts/make_active_data.py              # rewrites data/demo/active_{pool,test}.jsonl
    python scripts/make_active_data.py --out DIR    # or writes them in DIR

Standard library only, every choice drawn from random.Random(0): reruns give byte-identical files.
Four categories of short pairs (short, so the frozen model's features cost little CPU), from easy to hard
for a frozen 135M model: `polite` (a courteous answer beats a rude one), `helpful` (a concrete answer beats
an evasive one), `capital` (the right capital beats a wrong city of the same country or region) and
`arithmetic` (the right sum or product beats one that is off by a little). The first two are told apart
by tone and shape; the last two only by knowing the fact, which is where a small labelled budget is
best spent. All facts are real and correct; the wrong answers are labelled as rejected.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

CAPITALS = [
    ("France", "Paris", "Lyon"),
    ("Germany", "Berlin", "Munich"),
    ("Italy", "Rome", "Milan"),
    ("Spain", "Madrid", "Barcelona"),
    ("Japan", "Tokyo", "Osaka"),
    ("Canada", "Ottawa", "Toronto"),
    ("Australia", "Canberra", "Sydney"),
    ("Brazil", "Brasília", "Rio de Janeiro"),
    ("Turkey", "Ankara", "Istanbul"),
    ("India", "New Delhi", "Mumbai"),
    ("China", "Beijing", "Shanghai"),
    ("Egypt", "Cairo", "Alexandria"),
    ("Kenya", "Nairobi", "Mombasa"),
    ("Morocco", "Rabat", "Casablanca"),
    ("Switzerland", "Bern", "Zurich"),
    ("Vietnam", "Hanoi", "Ho Chi Minh City"),
    ("Nigeria", "Abuja", "Lagos"),
    ("Pakistan", "Islamabad", "Karachi"),
    ("Portugal", "Lisbon", "Porto"),
    ("Poland", "Warsaw", "Krakow"),
    ("Norway", "Oslo", "Bergen"),
    ("Sweden", "Stockholm", "Gothenburg"),
    ("Greece", "Athens", "Thessaloniki"),
    ("Russia", "Moscow", "Saint Petersburg"),
    ("Mexico", "Mexico City", "Guadalajara"),
    ("Argentina", "Buenos Aires", "Córdoba"),
    ("Peru", "Lima", "Cusco"),
    ("Chile", "Santiago", "Valparaíso"),
    ("Colombia", "Bogotá", "Medellín"),
    ("South Korea", "Seoul", "Busan"),
    ("Thailand", "Bangkok", "Chiang Mai"),
    ("New Zealand", "Wellington", "Auckland"),
    ("Ireland", "Dublin", "Cork"),
    ("Austria", "Vienna", "Salzburg"),
    ("Hungary", "Budapest", "Debrecen"),
    ("Finland", "Helsinki", "Tampere"),
    ("Denmark", "Copenhagen", "Aarhus"),
    ("Netherlands", "Amsterdam", "Rotterdam"),
    ("Belgium", "Brussels", "Antwerp"),
    ("Scotland", "Edinburgh", "Glasgow"),
]
CAPITAL_ASKS = [
    "What is the capital of {c}?",
    "Which city is the capital of {c}?",
    "Name the capital of {c}.",
    "{c}'s capital city is which one?",
    "Tell me the capital of {c}, please.",
]
CAPITAL_SAYS = ["The capital of {c} is {x}.", "{x} is the capital of {c}.", "It's {x}."]

ARITH_ASKS = [
    "What is {a} {op} {b}?",
    "Compute {a} {op} {b}.",
    "How much is {a} {op} {b}?",
    "Quick one: {a} {op} {b} = ?",
    "Work out {a} {op} {b} for me.",
]
ARITH_SAYS = ["{a} {op} {b} = {x}.", "The answer is {x}.", "That makes {x}."]

POLITE = [  # (question, what the polite answer says to do, the rude answer's core)
    (
        "Can you help me reset my password?",
        "click 'Forgot password' on the sign-in page and follow the email link.",
        "it's not hard, click the forgot password thing yourself.",
    ),
    (
        "My order arrived damaged. What now?",
        "reply with a photo and we'll send a replacement right away.",
        "not my problem, you should have ordered somewhere else.",
    ),
    (
        "How do I cancel my subscription?",
        "go to Settings, then Billing, and choose Cancel.",
        "why would you even cancel? Figure it out.",
    ),
    (
        "Could you explain what a budget is?",
        "a budget is a plan for how you'll spend and save money each month.",
        "everyone knows that. Look it up.",
    ),
    (
        "I think I was charged twice.",
        "I'll check the payment and refund the duplicate charge today.",
        "you probably clicked twice. Read your statement.",
    ),
    (
        "Where can I find the user manual?",
        "the manual is under Support, then Downloads, on our site.",
        "it's on the website, obviously.",
    ),
    (
        "Can I change my delivery address?",
        "open the order page and pick 'Edit address' before it ships.",
        "should've typed it right the first time.",
    ),
    (
        "What time does the store open?",
        "we open at 9 a.m. on weekdays and 10 a.m. on weekends.",
        "check the sign on the door like everyone else.",
    ),
    (
        "I'm new here. Where do I start?",
        "start with the short tour on the home page; it takes two minutes.",
        "just click around, I don't have time for this.",
    ),
    (
        "Is there a student discount?",
        "students get 15% off with a valid school email address.",
        "discounts are for people who pay full price first. No.",
    ),
    (
        "Can you recommend a good book?",
        "'The Hobbit' is a warm, fun adventure that most readers enjoy.",
        "go to a library and stop bothering me.",
    ),
    (
        "How do I update the app?",
        "open your app store, search for us, and tap Update.",
        "same as any app. Don't make me explain it.",
    ),
    (
        "Can I get a copy of my invoice?",
        "open Orders, pick the order, and press 'Download invoice'.",
        "you got it by email already. Search your inbox.",
    ),
    (
        "The app keeps crashing on my phone.",
        "try reinstalling it; if that fails, send us your phone model and we'll dig in.",
        "works fine for me. Buy a better phone.",
    ),
    (
        "Do you ship to Canada?",
        "we ship to Canada, and delivery usually takes five to seven days.",
        "read the shipping page before asking.",
    ),
    (
        "How do I contact a real person?",
        "call us at the number on the Contact page, any weekday from 8 to 6.",
        "you're talking to one and I'm busy.",
    ),
    (
        "Can I return shoes that don't fit?",
        "unworn shoes can be returned within 30 days for a full refund.",
        "you should have measured your feet.",
    ),
    (
        "What does the error code 404 mean?",
        "it means the page wasn't found; check the address or go back to the home page.",
        "google it like a normal person.",
    ),
    (
        "Can you help me write a thank-you note?",
        "start with what they did, say how it helped, and end with a warm wish.",
        "write it yourself, it's three sentences.",
    ),
    (
        "How do I turn on dark mode?",
        "open Settings, then Display, and switch on Dark theme.",
        "it's in the settings, where else would it be.",
    ),
]
POLITE_OPENERS = ["", "Hi! ", "Hello, ", "Quick question: ", "Sorry to bother you, but ", "Hey there. "]
POLITE_ACKS = ["Of course!", "Happy to help:", "Thanks for asking!", "Sure thing:", "Good question!", "Gladly:"]
POLITE_CLOSES = [
    "",
    " Anything else I can do?",
    " Thanks for your patience.",
    " Have a lovely day!",
    " Let me know if that works.",
    " I hope that helps!",
]
RUDE_OPENS = ["Ugh,", "Seriously?", "Look,", "Honestly,", "Come on,", "Wow,"]

HELPFUL = [  # (question, concrete answer, evasive answer)
    ("How many days are in a leap year?", "A leap year has 366 days."),
    ("What gas do plants take in from the air?", "Plants take in carbon dioxide for photosynthesis."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("What is the boiling point of water at sea level?", "Water boils at 100 °C (212 °F) at sea level."),
    ("Which planet is closest to the Sun?", "Mercury is the planet closest to the Sun."),
    ("How many minutes are in an hour?", "There are 60 minutes in an hour."),
    ("What is the largest ocean on Earth?", "The Pacific is the largest ocean on Earth."),
    ("Who wrote 'Romeo and Juliet'?", "William Shakespeare wrote 'Romeo and Juliet'."),
    ("What color do you get mixing blue and yellow?", "Mixing blue and yellow gives green."),
    ("How many sides does a hexagon have?", "A hexagon has six sides."),
    ("What is frozen water called?", "Frozen water is called ice."),
    ("Which organ pumps blood around the body?", "The heart pumps blood around the body."),
]
EVASIVE = [
    "Hmm, hard to say. You could search for it online.",
    "I'm not sure; maybe ask someone who knows.",
    "That depends on many things, really.",
    "Good question! Lots of people wonder about that.",
    "I'd rather not guess about that one.",
    "You might find it in a book somewhere.",
]
HELPFUL_OPENERS = ["", "Quick question: ", "I forgot: ", "Help me out. ", "Settle a debate: ", "Curious: "]


def chat(prompt: str, chosen: str, rejected: str, category: str) -> dict:
    return {
        "prompt": [{"role": "user", "content": prompt}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "category": category,
        "source": "synthetic",
    }


def capitals(rng: random.Random, per_country: int) -> list[dict]:
    out = []
    for country, right, wrong in CAPITALS:
        for ask, say in zip(rng.sample(CAPITAL_ASKS, per_country), rng.sample(CAPITAL_SAYS, per_country)):
            out.append(
                chat(ask.format(c=country), say.format(c=country, x=right), say.format(c=country, x=wrong), "capital")
            )
    return out


def arithmetic(rng: random.Random, n: int) -> list[dict]:
    out, seen = [], set()
    while len(out) < n:
        op = rng.choice(["+", "×"])
        a, b = (rng.randint(11, 89), rng.randint(11, 89)) if op == "+" else (rng.randint(3, 19), rng.randint(3, 12))
        if (a, op, b) in seen:
            continue
        seen.add((a, op, b))
        right = a + b if op == "+" else a * b
        wrong = right + rng.choice([-10, -2, -1, 1, 2, 10])
        ask, say = rng.choice(ARITH_ASKS), rng.choice(ARITH_SAYS)
        out.append(
            chat(
                ask.format(a=a, op=op, b=b),
                say.format(a=a, op=op, b=b, x=right),
                say.format(a=a, op=op, b=b, x=wrong),
                "arithmetic",
            )
        )
    return out


def polite(rng: random.Random, per_item: int) -> list[dict]:
    out = []
    for question, action, rude in POLITE:
        openers, acks = rng.sample(POLITE_OPENERS, per_item), rng.sample(POLITE_ACKS, per_item)
        closes, rudes = rng.sample(POLITE_CLOSES, per_item), rng.sample(RUDE_OPENS, per_item)
        for opener, ack, close, rude_open in zip(openers, acks, closes, rudes):
            lower = opener.endswith((": ", "but "))
            text = opener + (question[0].lower() + question[1:] if lower else question)
            good = f"{ack} {action[0].upper() + action[1:] if ack.endswith('!') else action}{close}"
            out.append(chat(text, good, f"{rude_open} {rude}", "polite"))
    return out


def helpful(rng: random.Random, per_item: int) -> list[dict]:
    out = []
    for question, answer in HELPFUL:
        for opener, evasive in zip(rng.sample(HELPFUL_OPENERS, per_item), rng.sample(EVASIVE, per_item)):
            out.append(chat(opener + question, answer, evasive, "helpful"))
    return out


def build(seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(pool, test): a quarter of every category's source items (countries, sums, questions) goes to the
    test split, so no test pair shares a country or a question with the pool."""
    rng = random.Random(seed)
    parts = [capitals(rng, 2), arithmetic(rng, 100), polite(rng, 3), helpful(rng, 3)]
    per_item = [2, 1, 3, 3]
    pool, test = [], []
    for records, k in zip(parts, per_item):
        cut = len(records) - len(records) // 4 // k * k  # whole source items only
        pool += records[:cut]
        test += records[cut:]
    rng.shuffle(pool)
    rng.shuffle(test)
    return pool, test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        default=str(Path(__file__).resolve().parents[1] / "data/demo"),
        help="directory for active_pool.jsonl and active_test.jsonl",
    )
    args = parser.parse_args()
    for name, records in zip(("active_pool", "active_test"), build()):
        path = Path(args.out) / f"{name}.jsonl"
        path.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8", newline="\n"
        )
        print(f"wrote {path}: {len(records)} pairs")


if __name__ == "__main__":
    main()
