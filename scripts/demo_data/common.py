"""Shared pieces of the demo data generator: names, dates, money, the record shape."""

from __future__ import annotations

import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "data" / "demo"

# --------------------------------------------------------------------------------------------------
# Shared pools
# --------------------------------------------------------------------------------------------------

FIRST = [
    "Maria",
    "James",
    "Aisha",
    "Kenji",
    "Sofia",
    "Liam",
    "Priya",
    "Daniel",
    "Fatima",
    "Lucas",
    "Elena",
    "Omar",
    "Hannah",
    "Mateo",
    "Chloe",
    "Noah",
    "Grace",
    "Ravi",
    "Isabel",
    "Ethan",
    "Yuki",
    "Samuel",
    "Leila",
    "Victor",
    "Nora",
    "Diego",
    "Amara",
    "Tom",
    "Ingrid",
    "Marcus",
]
LAST = [
    "Lopez",
    "Chen",
    "Okafor",
    "Tanaka",
    "Rossi",
    "Murphy",
    "Patel",
    "Schmidt",
    "Haddad",
    "Silva",
    "Novak",
    "Rahman",
    "Becker",
    "Garcia",
    "Dubois",
    "Kim",
    "Walsh",
    "Iyer",
    "Moreno",
    "Clarke",
    "Sato",
    "Adeyemi",
    "Nasser",
    "Petrov",
    "Lindqvist",
    "Reyes",
    "Mensah",
    "Harris",
    "Johansson",
    "Baker",
]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
TOWNS = [
    "Riverton",
    "Maple Falls",
    "Port Hadley",
    "Easton",
    "Cedar Bluff",
    "Lakeview",
    "Brookhaven",
    "Milford",
    "Ashford",
    "Westbury",
    "Fairmont",
    "Oakridge",
    "Stonebridge",
    "Harbor City",
    "Elmwood",
    "Pine Hollow",
    "Granite Bay",
    "Silver Lake",
]
FIRMS = [
    "Bluefin Logistics",
    "Crestline Supplies",
    "Harbor & Pine Design",
    "Summit Dental Group",
    "Kestrel Software",
    "Maplewood Catering",
    "Ironleaf Consulting",
    "Brightpath Tutoring",
    "Redwood Print Co.",
    "Northgate Plumbing",
    "Silverline Travel",
    "Lumen Electric",
    "Greenfield Farms",
    "Tidewater Insurance",
    "Copperleaf Studios",
    "Alder & Finch Legal",
]


def name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def date(rng: random.Random) -> str:
    return f"{rng.choice(MONTHS)} {rng.randint(1, 28)}"


def money(rng: random.Random, lo: int, hi: int) -> str:
    cents = rng.choice([0, 0, 0, 50, 25, 75, 99, 40])
    return f"{rng.randint(lo, hi):,}.{cents:02d}"


def cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def poss(s: str) -> str:
    """Possessive: "Larkspur Foods'" but "Riverton's"."""
    return s + "'" if s.endswith("s") else s + "'s"


def a_an(s: str) -> str:
    return ("an " if s[:1].lower() in "aeiou" else "a ") + s


def tidy(s: str) -> str:
    """Collapse the double period after abbreviations like "3 p.m." at the end of a sentence."""
    return s.replace(".m..", ".m.")


def tokens_estimate(text: str) -> int:
    """Rough token count for a SmolLM2-style BPE (words, single digits and punctuation, +15%).
    Used only to keep records short."""
    return int(len(re.findall(r"[^\W\d_]+|\d|[^\w\s]", text)) * 1.15) + 1


def item(task: str, group: str, user: str, assistant: str) -> dict:
    return {"task": task, "group": group, "user": tidy(user), "assistant": tidy(assistant)}
