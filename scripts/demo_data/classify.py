"""SFT task: classification (sentiment, spam, topic, meeting facts)."""

from __future__ import annotations

import random

from demo_data.common import FIRST, WEEKDAYS, date, item

# --------------------------------------------------------------------------------------------------
# SFT: classify
# --------------------------------------------------------------------------------------------------

PRODUCTS = [
    "wireless earbuds",
    "coffee grinder",
    "hiking backpack",
    "desk lamp",
    "air fryer",
    "phone case",
    "pair of running shoes",
    "blender",
    "e-reader",
    "office chair",
    "yoga mat",
    "electric kettle",
    "mechanical keyboard",
    "rain jacket",
    "robot vacuum",
    "water bottle",
    "Bluetooth speaker",
    "camping tent",
    "smartwatch",
    "cast iron pan",
    "baby monitor",
    "standing desk",
    "hair dryer",
    "suitcase",
]
ASPECTS = [
    (
        "build quality",
        [
            "It feels solid and well made.",
            "The build quality is excellent for the price.",
            "Everything about it feels sturdy.",
        ],
        [
            "It feels flimsy and cheap.",
            "A piece cracked within the first week.",
            "The plastic creaks every time I touch it.",
        ],
    ),
    (
        "price",
        ["It's great value for the money.", "Honestly worth every penny.", "For this price I expected much less."],
        [
            "It's way overpriced for what you get.",
            "Not worth the money at all.",
            "You can find better for half the price.",
        ],
    ),
    (
        "delivery",
        ["It arrived two days early and well packed.", "Shipping was fast and the box was in perfect shape."],
        ["It showed up a week late in a dented box.", "The package arrived damaged and missing a part."],
    ),
    (
        "setup",
        ["Setup took less than five minutes.", "It was easy to set up, even for my parents."],
        ["The instructions were confusing and setup took an hour.", "Getting it working was a frustrating mess."],
    ),
    (
        "customer service",
        [
            "Customer service answered my question within an hour.",
            "Support was friendly and sent a replacement part right away.",
        ],
        ["Customer service never replied to my emails.", "Support was rude and refused to help."],
    ),
    (
        "design",
        ["It looks great in my apartment.", "The design is sleek and modern."],
        ["It looks much cheaper than in the photos.", "The color is nothing like the pictures."],
    ),
    (
        "performance",
        ["It works exactly as advertised.", "It does its job quickly and quietly."],
        ["It stopped working properly after a few uses.", "It's noisy and doesn't do what the listing promised."],
    ),
    (
        "durability",
        ["I've used it daily for six months with no problems.", "Still going strong after a year of heavy use."],
        ["It broke after a month.", "It wore out far faster than it should have."],
    ),
]
OPENERS = [
    "I bought this {p} last month.",
    "Got this {p} as a gift for my sister.",
    "Ordered the {p} for my new apartment.",
    "My old one died, so I tried this {p}.",
    "",
    "Bought the {p} on sale.",
    "Picked up this {p} after reading a lot of reviews.",
]
CLOSERS = {
    "positive": ["Highly recommend.", "Would buy again.", "Five stars from me.", ""],
    "negative": ["I'm returning it.", "Would not recommend.", "One star.", ""],
    "mixed": ["Overall it's okay.", "Three stars.", "Mixed feelings about this one.", ""],
}
CLS_INSTR = [
    'Classify the sentiment of this review as positive, negative, or mixed:\n\n"{r}"',
    "What is the sentiment of the following customer review? Options: positive / negative / mixed.\n\n{r}",
    "Review: {r}\n\nSentiment (positive, negative, or mixed)?",
    "Label this product review as positive, negative or mixed.\n\n{r}",
    'Is this review positive, negative, or mixed?\n"{r}"',
]

SPAM = [
    (
        "Congratulations! You have been selected to receive a free {prize}. Click {link} within 24 hours to claim your reward.",
        "It promises a free prize and pushes you to click a link quickly.",
    ),
    (
        "URGENT: Your {bank} account has been suspended. Verify your password at {link} immediately to avoid closure.",
        "It uses urgency to get you to enter your password on an unknown link.",
    ),
    (
        "Make ${n} a day working from home! No experience needed. Reply YES now to get started.",
        "It is an unsolicited get-rich-quick offer.",
    ),
    (
        "Final notice: your parcel could not be delivered. Pay the ${fee} redelivery fee at {link} today.",
        "It is a fake delivery notice asking for a payment through a link.",
    ),
    (
        "You have won ${big} in the International Online Lottery! Send your bank details to claim the prize.",
        "It claims you won a lottery you never entered and asks for bank details.",
    ),
    (
        "Exclusive deal!!! Designer {thing} at 90% off, today only. Order now at {link}",
        "It is an unsolicited ad with an unrealistic discount and a suspicious link.",
    ),
]
HAM = [
    (
        "Hi {f}, are we still on for lunch on {d}? I can book a table for noon.",
        "It is an ordinary personal message about lunch plans.",
    ),
    (
        "Reminder: your dental cleaning is on {date} at {time}. Call the office if you need to reschedule.",
        "It is a normal appointment reminder.",
    ),
    (
        "Hey, I left my charger at your place. Could you bring it to practice tomorrow?",
        "It is a normal message between friends.",
    ),
    ("The {topic} meeting has moved to {room}, same time as before.", "It is a routine update about a work meeting."),
    (
        "Thanks for dinner last night, {f}! Let me know when you're free so I can return the favor.",
        "It is a friendly personal thank-you note.",
    ),
    (
        "Your library book is due back on {date}. You can renew it at the front desk.",
        "It is a routine notice from a library.",
    ),
]
SPAM_INSTR = [
    'Is the following message spam or not spam?\n\n"{m}"',
    "Classify this text message as spam or not spam:\n{m}",
    "Message: {m}\n\nLabel it: spam or not spam.",
]
HEADLINES = [
    ("sports", "Local striker scores twice as United reach the cup final", "a soccer cup match"),
    ("sports", "Veteran pitcher announces retirement after 18 seasons", "a baseball player's retirement"),
    ("sports", "Underdog cyclist wins mountain stage in heavy rain", "a cycling race"),
    ("sports", "National swim team breaks relay record at world championships", "a swimming competition"),
    ("sports", "Tennis star withdraws from open with wrist injury", "a tennis tournament"),
    ("sports", "City marathon draws record 40,000 runners", "a marathon"),
    ("business", "Regional bank raises interest rates on savings accounts", "banking and interest rates"),
    ("business", "Grocery chain to open 30 new stores next year", "a retailer's expansion"),
    ("business", "Airline shares fall after fuel costs jump", "an airline's stock price"),
    ("business", "Coffee prices hit a ten-year high", "commodity prices"),
    ("business", "Family-owned bakery bought by national food company", "a company acquisition"),
    ("business", "Unemployment rate drops to lowest level in a decade", "the job market"),
    ("technology", "New smartphone chip promises two-day battery life", "a smartphone processor"),
    ("technology", "Popular messaging app adds end-to-end encrypted backups", "a messaging app feature"),
    ("technology", "Start-up unveils a robot that folds laundry", "a household robot"),
    ("technology", "Major browser update blocks third-party tracking cookies", "web browser privacy"),
    ("technology", "Researchers build a faster open-source database engine", "database software"),
    ("health", "Doctors urge flu shots as winter cases rise", "flu vaccination"),
    ("health", "Study links regular walking to lower risk of heart disease", "exercise and heart health"),
    ("health", "Hospital opens new wing for children's cancer care", "a children's hospital"),
    ("health", "Health officials warn of heat stroke during record summer temperatures", "heat-related illness"),
    ("health", "New guidelines recommend less added sugar for toddlers", "children's nutrition"),
    ("science", "Astronomers spot water vapor on a distant exoplanet", "an exoplanet discovery"),
    ("science", "Fossil of a feathered dinosaur found in a desert quarry", "a fossil discovery"),
    ("science", "Deep-sea expedition discovers new species of glowing squid", "marine biology"),
    ("science", "Physicists measure gravity's pull on antimatter", "a physics experiment"),
    ("science", "Ice cores reveal 800,000 years of climate history", "climate research"),
]
TOPIC_INSTR = [
    'Classify this headline into one topic: sports, business, technology, health, or science.\n\n"{h}"',
    "Headline: {h}\nWhich category fits best (sports / business / technology / health / science)?",
    "What topic is this news headline about? Choose from sports, business, technology, health, science.\n{h}",
]
ROOMS = [
    "Room 204",
    "the Birch conference room",
    "Meeting Room B",
    "the Harbor Room",
    "Room 11",
    "the third-floor lounge",
    "the library annex",
    "Studio 2",
]
TIMES = ["9:30 a.m.", "10 a.m.", "11:15 a.m.", "1 p.m.", "2:30 p.m.", "3 p.m.", "4:45 p.m.", "8:45 a.m."]
MEET_TOPICS = [
    ("the Q3 budget", "Q3 budget"),
    ("the website redesign", "Website redesign"),
    ("the hiring plan", "Hiring plan"),
    ("the product launch checklist", "Launch checklist"),
    ("the customer survey results", "Survey results"),
    ("the office move", "Office move"),
    ("the new vacation policy", "Vacation policy"),
    ("the spring marketing campaign", "Spring campaign"),
    ("the supplier contract", "Supplier contract"),
    ("the year-end audit", "Year-end audit"),
]


def gen_classify(rng: random.Random) -> list[dict]:
    out = []
    for i in range(56):
        prod = PRODUCTS[i % len(PRODUCTS)]
        label = ["positive", "negative", "mixed"][i % 3]
        a1, a2 = rng.sample(ASPECTS, 2)
        if label == "positive":
            s1, s2 = rng.choice(a1[1]), rng.choice(a2[1])
            why = f"The reviewer praises the {a1[0]} and the {a2[0]}."
        elif label == "negative":
            s1, s2 = rng.choice(a1[2]), rng.choice(a2[2])
            why = f"The reviewer complains about the {a1[0]} and the {a2[0]}."
        else:
            s1, s2 = rng.choice(a1[1]), rng.choice(a2[2])
            why = f"The reviewer likes the {a1[0]} but is unhappy with the {a2[0]}."
            if rng.random() < 0.5:
                s1, s2 = s2, s1
                why = f"The reviewer is unhappy with the {a2[0]} but likes the {a1[0]}."
        parts = [rng.choice(OPENERS).format(p=prod), s1, s2, rng.choice(CLOSERS[label])]
        review = " ".join(x for x in parts if x)
        out.append(item("classify", f"review-{i}", rng.choice(CLS_INSTR).format(r=review), f"Label: {label}. {why}"))
    fill = dict(
        prize=["cruise to the Bahamas", "iPhone", "$500 gift card", "luxury watch"],
        bank=["Chase", "PayPal", "Wells Fargo", "Barclays", "Amazon"],
        link=["bit.ly/claim-now", "secure-verify-login.net", "win-prize.co/free", "tinyurl.com/redeliver"],
        thing=["handbags", "sunglasses", "watches", "sneakers"],
    )
    for i in range(16):
        if i % 2 == 0:
            tmpl, why = SPAM[(i // 2) % len(SPAM)]
            msg = tmpl.format(
                prize=rng.choice(fill["prize"]),
                bank=rng.choice(fill["bank"]),
                link=rng.choice(fill["link"]),
                thing=rng.choice(fill["thing"]),
                n=rng.choice([300, 450, 800, 1000]),
                fee=rng.choice(["1.99", "2.95", "3.50"]),
                big=f"{rng.choice([250, 850, 1500, 2000]) * 1000:,}",
            )
            label = "spam"
        else:
            tmpl, why = HAM[(i // 2) % len(HAM)]
            topic = rng.choice(MEET_TOPICS)[0]
            msg = tmpl.format(
                f=rng.choice(FIRST),
                d=rng.choice(WEEKDAYS),
                date=date(rng),
                time=rng.choice(TIMES),
                topic=topic.removeprefix("the "),
                room=rng.choice(ROOMS),
            )
            label = "not spam"
        out.append(item("classify", f"spam-{i}", rng.choice(SPAM_INSTR).format(m=msg), f"Label: {label}. {why}"))
    for i, (topic, head, about) in enumerate(HEADLINES):
        out.append(
            item(
                "classify",
                f"head-{i}",
                rng.choice(TOPIC_INSTR).format(h=head),
                f"Label: {topic}. The headline is about {about}.",
            )
        )
    return out
