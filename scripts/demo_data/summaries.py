"""SFT task: summaries of short news-like texts."""

from __future__ import annotations

import random

from demo_data.common import MONTHS, TOWNS, WEEKDAYS, a_an, cap, item, name, poss

# --------------------------------------------------------------------------------------------------
# SFT: summarize
# --------------------------------------------------------------------------------------------------

COUNCIL_MEASURES = [
    ("expand the downtown bike lane network", "cut traffic and make commuting safer", "lost parking spaces"),
    ("raise parking fees near the train station", "pay for two new bus routes", "the extra cost for daily commuters"),
    (
        "keep the public library open until 9 p.m. on weekdays",
        "help students and shift workers",
        "higher staffing costs",
    ),
    ("ban single-use plastic bags in grocery stores", "reduce litter in local rivers", "the burden on small shops"),
    (
        "build a new community swimming pool",
        "give families an affordable place to exercise",
        "the project's $14 million price tag",
    ),
    (
        "plant 5,000 street trees over the next five years",
        "keep neighborhoods cooler in summer",
        "long-term maintenance costs",
    ),
    (
        "turn an empty warehouse into affordable apartments",
        "ease the local housing shortage",
        "extra traffic on nearby streets",
    ),
    (
        "install speed cameras near every elementary school",
        "protect children walking to class",
        "privacy and the risk of a ticket trap",
    ),
    (
        "offer free bus rides to residents over 65",
        "help older residents stay independent",
        "the cost to the transit budget",
    ),
    (
        "close Main Street to cars on summer weekends",
        "bring more shoppers to local businesses",
        "detours for delivery trucks",
    ),
]

EARNINGS = [
    # company, industry, product, growth risk
    ("Larkspur Foods", "snack", "protein bars", "rising cocoa prices"),
    ("Veltro Audio", "headphone", "noise-cancelling earbuds", "a shortage of chips"),
    ("Brightwell Outdoor", "camping gear", "lightweight tents", "higher shipping costs"),
    ("Orchid Cosmetics", "skin care", "sunscreen line", "new packaging rules in Europe"),
    ("Tallgrass Motors", "electric scooter", "folding scooters", "slowing demand in cities"),
    ("Quarry Games", "video game", "new puzzle game", "delays to its next release"),
    ("Pinecrest Home", "furniture", "modular sofas", "a cooling housing market"),
    ("Nimbus Cloudworks", "software", "data backup service", "tougher competition on price"),
]

STORMS = [
    ("winter storm", "30 centimeters of snow", "clear roads and restore power to about 12,000 homes", "milder weather"),
    ("spring storm", "nearly 8 centimeters of rain", "pump water out of flooded underpasses", "drier conditions"),
    ("ice storm", "a thick layer of ice", "remove fallen branches from power lines", "rising temperatures"),
    ("tropical storm", "heavy rain and gusts of up to 90 km/h", "reopen the coastal highway", "calmer seas"),
    ("late-season blizzard", "more than 40 centimeters of snow", "dig out stranded buses", "sunny skies"),
]
REGIONS = [
    "the northern valley",
    "the coastal counties",
    "the lake district",
    "the eastern suburbs",
    "the river basin",
    "the foothills region",
    "the western plains",
]

STUDIES = [
    (
        "a 20-minute walk after dinner lowered blood sugar spikes",
        "adults with prediabetes",
        "six months",
        "the study was small and did not include people with diabetes",
    ),
    (
        "students who slept at least eight hours scored higher on memory tests",
        "university students",
        "one semester",
        "the students reported their own sleep times",
    ),
    (
        "city parks with more trees were up to 3 degrees cooler in summer",
        "urban parks",
        "two summers",
        "the results may not apply to dry climates",
    ),
    (
        "honeybees visited flowers less often in areas with heavy traffic noise",
        "bee colonies",
        "one growing season",
        "other kinds of pollution may also play a role",
    ),
    (
        "people who took short breaks every hour made fewer typing errors",
        "office workers",
        "eight weeks",
        "the tasks were simpler than most real jobs",
    ),
    (
        "children who read aloud daily built larger vocabularies",
        "primary school pupils",
        "a full school year",
        "parents chose whether their children took part",
    ),
    (
        "coral grown in nurseries survived heat waves better than wild coral",
        "coral fragments",
        "three years",
        "the nurseries were in a single bay",
    ),
    (
        "older adults who learned a new language kept sharper attention",
        "adults over 65",
        "four months",
        "the effect was modest and needs to be repeated",
    ),
]
UNIS = [
    "Westbury University",
    "the Northern Institute of Technology",
    "Lakeview Medical College",
    "Fairmont State University",
    "the Coastal Research Center",
    "Ashford University",
]
JOURNALS = [
    "a peer-reviewed journal",
    "the journal Nature Communications",
    "an open-access journal",
    "a leading medical journal",
]

TEAMS = [
    "Riverton Hawks",
    "Lakeview Lions",
    "Easton Rangers",
    "Milford Comets",
    "Fairmont Bears",
    "Oakridge Owls",
    "Westbury Wolves",
    "Cedar Bluff Pirates",
    "Harbor City Sharks",
]
FEATS = [
    ("two late goals", "soccer"),
    ("three touchdowns", "football"),
    ("a hat trick", "hockey"),
    ("31 points", "basketball"),
    ("a ninth-inning home run", "baseball"),
    ("two first-half goals", "soccer"),
]
PLACES = ["first", "second", "third", "fourth"]

GADGETS = [
    (
        "Lumo",
        "Lumo Glow",
        "smart desk lamp that adjusts to the time of day",
        "warm light and simple app",
        "a short power cable",
    ),
    (
        "Kestrel",
        "Kestrel Pad 2",
        "lightweight tablet for students",
        "bright screen and long battery life",
        "a slow charger in the box",
    ),
    ("Veltro", "Veltro Air", "pair of wireless earbuds", "clear sound and comfortable fit", "weak noise cancelling"),
    ("Tallgrass", "Tallgrass Go", "folding electric scooter", "sturdy frame and quick folding", "its heavy weight"),
    (
        "Orbit Labs",
        "Orbit Home Hub",
        "smart home speaker with a screen",
        "easy setup and good speaker",
        "limited app support",
    ),
    ("Pikeview", "Pikeview Trail", "GPS running watch", "accurate tracking and bright display", "a confusing menu"),
    ("Nimbus", "Nimbus Cam", "home security camera", "sharp night video", "the need for a paid subscription"),
]

BRIDGES = [
    ("Old Mill Bridge", "the Route 9 overpass", "ferry"),
    ("Harbor Street Bridge", "the Eastside Tunnel", "bus"),
    ("Kingsway Viaduct", "Riverside Drive", "train"),
    ("North Fork Bridge", "the Canal Road crossing", "shuttle bus"),
    ("Union Avenue Bridge", "the Beltline highway", "light rail"),
]

FUNDRAISERS = [
    ("charity run", "the children's hospital", "make it an annual event"),
    ("bake sale", "the local food bank", "hold a second sale in the spring"),
    ("talent show", "new library books", "invite other schools next year"),
    ("car wash", "a family who lost their home in a fire", "donate the leftover supplies"),
    ("book fair", "a reading program for younger pupils", "expand the fair to two days"),
    ("concert", "new instruments for the school band", "record the next performance"),
]
SCHOOLS = [
    "Lakeview High School",
    "Oakridge Middle School",
    "St. Anne's Academy",
    "Westbury Elementary",
    "Cedar Bluff High School",
    "Maple Falls Community School",
]

SUM_INSTR = [
    "Summarize the following in one sentence:\n\n{p}",
    "Give me a one-sentence summary of this news item.\n\n{p}",
    "TL;DR, please:\n\n{p}",
    "{p}\n\nSummarize the paragraph above.",
    "Can you summarize this for me?\n\n{p}",
    'Write a brief summary of this article excerpt:\n"{p}"',
    "Summarize:\n{p}",
    "I don't have time to read this. What's the gist?\n\n{p}",
]


def gen_summaries(rng: random.Random) -> list[dict]:
    out = []

    def add(group, paragraph, summary):
        out.append(item("summarize", group, rng.choice(SUM_INSTR).format(p=paragraph), "Summary: " + cap(summary)))

    for i, (measure, benefit, concern) in enumerate(COUNCIL_MEASURES):
        for _ in range(2):
            town, seats = rng.choice(TOWNS), rng.choice([7, 9, 11])
            a = rng.randint(seats // 2 + 1, seats - 1)
            b, day, month = seats - a, rng.choice(WEEKDAYS), rng.choice(MONTHS)
            p = (
                f"The {town} city council voted {a} to {b} on {day} to {measure}. Supporters said the "
                f"plan would {benefit}, while opponents raised concerns about {concern}. The change is "
                f"expected to take effect in {month}."
            )
            s = (
                f"{poss(town)} council voted {a}-{b} to {measure}, starting in {month}, despite concerns "
                f"about {concern}."
            )
            add(f"council-{i}-{town}", p, s)
    for i, (co, ind, prod, risk) in enumerate(EARNINGS):
        for up in (True, False):
            rev, pct, sh = rng.randint(40, 900), rng.randint(3, 28), rng.randint(2, 9)
            city, day = rng.choice(TOWNS), rng.choice(WEEKDAYS)
            if up:
                p = (
                    f"{co}, the {ind} maker based in {city}, said on {day} that quarterly revenue rose "
                    f"{pct} percent from a year earlier to ${rev} million. The company credited strong "
                    f"demand for its {prod}, but warned that {risk} could slow growth next year. Shares "
                    f"rose {sh} percent in early trading."
                )
                s = (
                    f"{poss(co)} quarterly revenue rose {pct}% to ${rev} million on strong sales of its "
                    f"{prod}, though {risk} may slow growth next year."
                )
            else:
                p = (
                    f"Quarterly revenue at {co} fell {pct} percent to ${rev} million, the {city}-based "
                    f"{ind} company reported on {day}. Executives blamed {risk} and weaker sales of its "
                    f"{prod}. They said cost cuts should help the company return to growth next year, "
                    f"but shares slipped {sh} percent."
                )
                s = (
                    f"{poss(co)} quarterly revenue fell {pct}% to ${rev} million because of {risk} and weaker "
                    f"sales of its {prod}; shares dropped {sh}%."
                )
            add(f"earn-{i}-{up}", p, s)
    for i, (kind, amount, work, outlook) in enumerate(STORMS):
        for _ in range(3):
            region, n, day = rng.choice(REGIONS), rng.randint(12, 90), rng.choice(WEEKDAYS)
            p = (
                f"{cap(a_an(kind))} brought {amount} to {region} on {day}, closing {n} schools and delaying "
                f"flights at the regional airport. Crews worked through the night to {work}. "
                f"Forecasters expect {outlook} by the weekend."
            )
            s = (
                f"{cap(a_an(kind))} hit {region} with {amount}, closing {n} schools and delaying flights, "
                f"with {outlook} expected by the weekend."
            )
            add(f"storm-{i}-{region}", p, s)
    for i, (finding, subj, period, caveat) in enumerate(STUDIES):
        for _ in range(2):
            uni, n, journal = (
                rng.choice(UNIS),
                rng.choice([48, 120, 260, 350, 600, 1200, 85, 210]),
                rng.choice(JOURNALS),
            )
            p = (
                f"Researchers at {uni} have found that {finding}. The team followed {n} {subj} over "
                f"{period} and published the results in {journal} this week. The authors caution that "
                f"{caveat}."
            )
            s = (
                f"{cap(a_an(uni.removeprefix('the ')))} study of {n} {subj} found that {finding}, but the authors note "
                f"that {caveat}."
            )
            add(f"study-{i}", p, s)
    for i in range(12):
        t1, t2 = rng.sample(TEAMS, 2)
        feat, sport = rng.choice(FEATS)
        s1 = {
            "soccer": rng.randint(2, 4),
            "football": rng.randint(24, 38),
            "hockey": rng.randint(3, 6),
            "basketball": rng.randint(95, 118),
            "baseball": rng.randint(3, 7),
        }[sport]
        s2 = s1 - rng.randint(1, 2 if sport in ("soccer", "hockey", "baseball") else 9)
        player, coach = name(rng), name(rng)
        place, k = rng.choice(PLACES), rng.randint(3, 12)
        adj = rng.choice(["frustrating", "a wake-up call", "hard to accept", "disappointing"])
        p = (
            f"The {t1} beat the {t2} {s1}-{s2} on {rng.choice(WEEKDAYS)} night, thanks to {player}'s "
            f"{feat}. The win lifts the {t1} into {place} place in the league with {k} games left to "
            f'play. {t2} coach {coach} called the loss "{adj}."'
        )
        s = f"The {t1} beat the {t2} {s1}-{s2} behind {player}'s {feat}, moving into {place} place with {k} games left."
        add(f"sport-{i}", p, s)
    for i, (co, prod, desc, pro, con) in enumerate(GADGETS):
        for _ in range(2):
            price, month, city = (
                rng.choice([49, 79, 99, 129, 199, 249, 299, 349]),
                rng.choice(MONTHS),
                rng.choice(TOWNS),
            )
            p = (
                f"{co} unveiled the {prod}, a {desc}, at an event in {city} on {rng.choice(WEEKDAYS)}. It "
                f"will cost ${price} and ships in {month}. Early reviewers praised its {pro} but "
                f"pointed to {con} as a drawback."
            )
            s = f"{poss(co)} new {prod} costs ${price} and ships in {month}; reviewers like its {pro} but criticize {con}."
            add(f"gadget-{i}", p, s)
    for i, (bridge, alt, transit) in enumerate(BRIDGES):
        for _ in range(2):
            town = rng.choice(TOWNS)
            m1 = rng.randint(0, 8)
            m2 = m1 + rng.randint(2, 3)
            n = rng.choice([18000, 22000, 35000, 41000, 9000, 27000])
            p = (
                f"The {bridge} in {town} will close for repairs from {MONTHS[m1]} to {MONTHS[m2]}, the "
                f"transportation department announced. About {n:,} vehicles cross it each day. Drivers "
                f"are advised to use {alt}, and extra {transit} service will run during rush hour."
            )
            s = (
                f"{poss(town)} {bridge} will close for repairs from {MONTHS[m1]} to {MONTHS[m2]}; drivers should "
                f"use {alt}, and extra {transit} service will run at rush hour."
            )
            add(f"bridge-{i}-{town}", p, s)
    for i, (event, cause, nxt) in enumerate(FUNDRAISERS):
        for _ in range(2):
            school, amt, n, pct = (
                rng.choice(SCHOOLS),
                rng.randint(18, 95) * 100,
                rng.randint(12, 60) * 10,
                rng.randint(10, 60),
            )
            p = (
                f"Students at {school} raised ${amt:,} for {cause} during a {event} last weekend. More "
                f"than {n} people took part, and the total beat last year's by {pct} percent. Organizers "
                f"now plan to {nxt}."
            )
            s = (
                f"{school} students raised ${amt:,} for {cause} with a {event}, {pct}% more than last year, "
                f"and plan to {nxt}."
            )
            add(f"fund-{i}-{school}", p, s)
    return out
