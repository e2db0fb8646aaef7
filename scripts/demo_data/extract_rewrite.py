"""SFT tasks: extraction into a fixed form, and rewriting in another tone or length."""

from __future__ import annotations

import random
import re

from demo_data.classify import MEET_TOPICS, ROOMS, TIMES
from demo_data.common import FIRMS, FIRST, cap, date, item, money, name

# --------------------------------------------------------------------------------------------------
# SFT: extract
# --------------------------------------------------------------------------------------------------

SHOP_ITEMS = [
    ("desk chair", 149),
    ("monitor stand", 39),
    ("USB-C cable", 12),
    ("ceramic mug", 18),
    ("notebook", 6),
    ("standing mat", 45),
    ("wireless mouse", 29),
    ("table lamp", 54),
    ("backpack", 68),
    ("water filter", 24),
    ("phone charger", 19),
    ("throw pillow", 22),
]
CITIES = [
    "Chicago",
    "Denver",
    "Boston",
    "Seattle",
    "Atlanta",
    "Austin",
    "Toronto",
    "Dublin",
    "Lisbon",
    "Madrid",
    "Berlin",
    "Tokyo",
    "Singapore",
    "Sydney",
    "Vancouver",
    "Oslo",
]


def gen_extract(rng: random.Random) -> list[dict]:
    out = []
    for i in range(24):  # invoices
        to, sender, firm = rng.choice(FIRST), name(rng), rng.choice(FIRMS)
        inv, amt, d = rng.randint(1000, 9999), money(rng, 80, 6500), date(rng)
        text = [
            f"Hi {to},\n\nThis is {sender} from {firm}. Invoice #{inv} for ${amt} is due on {d}. You can pay by bank transfer or card.\n\nThanks,\n{sender.split()[0]}",
            f"Dear {to},\nA quick reminder that payment of ${amt} for invoice #{inv} is due {d}. Please contact me if anything looks wrong.\nBest regards,\n{sender}\n{firm}",
            f"{to}, {firm} has issued invoice #{inv} (${amt}). The due date is {d}. Questions? Just reply to this email. - {sender}",
        ][i % 3]
        instr = rng.choice(
            [
                "Extract the sender's name, the invoice number, the amount and the due date from this email:\n\n{t}",
                "Pull out the key fields (sender, invoice number, amount, due date) from the message below.\n\n{t}",
                "{t}\n\nExtract the sender, invoice number, amount and due date.",
            ]
        )
        out.append(
            item(
                "extract",
                f"inv-{i}",
                instr.format(t=text),
                f"Extracted: name={sender}; invoice=#{inv}; amount=${amt}; date={d}",
            )
        )
    for i in range(24):  # meetings
        sender, d, t, room = name(rng), date(rng), rng.choice(TIMES), rng.choice(ROOMS)
        topic, title = rng.choice(MEET_TOPICS)
        text = [
            f"Hi team,\n\nLet's meet on {d} at {t} in {room} to go over {topic}. Please bring your notes.\n\n{sender}",
            f"Subject: {title}\n\n{sender} here. I've booked {room} for {d} at {t}. We'll review {topic}. Let me know if that time doesn't work.",
            f"Reminder from {sender}: the review of {topic} is on {d}, {t}, in {room}. Coffee will be provided.",
        ][i % 3]
        instr = rng.choice(
            [
                "Extract the organizer, date, time and location from this message:\n\n{t}",
                "From the text below, pull out who is organizing the meeting, plus its date, time and place.\n\n{t}",
                "{t}\n\nWhat are the organizer, date, time and location? Extract them.",
            ]
        )
        out.append(
            item(
                "extract",
                f"meet-{i}",
                instr.format(t=text),
                f"Extracted: name={sender}; date={d}; time={t}; location={room}",
            )
        )
    for i in range(22):  # orders
        cust, (prod, unit), qty = name(rng), rng.choice(SHOP_ITEMS), rng.randint(2, 6)
        oid, d, city = f"#{rng.choice('ABCDEFGHJK')}{rng.randint(10000, 99999)}", date(rng), rng.choice(CITIES)
        text = [
            f"Order {oid} confirmed! {qty} x {prod} at ${unit} each. Shipping to {cust}, {city}. Estimated delivery: {d}.",
            f"Thanks for your purchase, {cust.split()[0]}. We've received order {oid}: {prod}, quantity {qty}, ${unit} per item. It will ship to {cust} in {city} and should arrive by {d}.",
        ][i % 2]
        instr = rng.choice(
            [
                "Extract the customer name, product, quantity, total price and delivery date from this order confirmation:\n\n{t}",
                "{t}\n\nPull out: customer, product, quantity, total cost, delivery date.",
            ]
        )
        out.append(
            item(
                "extract",
                f"order-{i}",
                instr.format(t=text),
                f"Extracted: name={cust}; product={prod}; quantity={qty}; total=${qty * unit}; delivery={d}",
            )
        )
    for i in range(18):  # flights
        pax, (c1, c2), d, t = name(rng), rng.sample(CITIES, 2), date(rng), rng.choice(TIMES)
        code, seat = (
            f"{rng.choice(['NW', 'BA', 'LH', 'AC', 'TP', 'QF'])}{rng.randint(100, 989)}",
            f"{rng.randint(3, 38)}{rng.choice('ABCDEF')}",
        )
        text = [
            f"Booking confirmed for {pax}. Flight {code} from {c1} to {c2} departs on {d} at {t}, seat {seat}.",
            f"Dear {pax}, your trip is booked. Flight {code} leaves {c1} on {d} at {t} and lands in {c2} the same day. Your seat is {seat}.",
        ][i % 2]
        instr = rng.choice(
            [
                "Extract the passenger, flight number, origin, destination, date and departure time:\n\n{t}",
                "{t}\n\nExtract the key travel details from this confirmation.",
            ]
        )
        out.append(
            item(
                "extract",
                f"flight-{i}",
                instr.format(t=text),
                f"Extracted: name={pax}; flight={code}; from={c1}; to={c2}; date={d}; time={t}",
            )
        )
    return out


# --------------------------------------------------------------------------------------------------
# SFT: rewrite
# --------------------------------------------------------------------------------------------------

# (casual, formal) pairs; used in both directions, split as one group.
CASUAL_FORMAL = [
    ("hey, can u send me the report asap?", "Could you please send me the report as soon as possible?"),
    ("sorry, can't make it to the meeting tmrw.", "I apologize, but I will be unable to attend tomorrow's meeting."),
    (
        "the new software is super buggy and kinda useless.",
        "The new software has numerous defects and is of limited use.",
    ),
    ("gonna be like 10 mins late, traffic is nuts.", "I will be approximately ten minutes late due to heavy traffic."),
    ("thanks a ton for helping out with the move!", "Thank you very much for your assistance with the move."),
    ("we need more cash to finish this thing.", "We require additional funding to complete this project."),
    ("can you take a look at my code when you get a sec?", "Could you review my code when you have a moment?"),
    (
        "the boss wants everybody in the office on monday.",
        "Management has requested that all staff be in the office on Monday.",
    ),
    ("that presentation was awesome, great job!", "That was an excellent presentation. Well done."),
    ("we're out of printer paper again.", "We have once again run out of printer paper."),
    ("i think the numbers in this sheet are wrong.", "I believe the figures in this spreadsheet are incorrect."),
    ("just checking if you got my last email.", "I am writing to confirm that you received my previous email."),
    ("the client is pretty mad about the delay.", "The client is quite dissatisfied with the delay."),
    ("let's grab lunch and talk about the plan.", "Shall we discuss the plan over lunch?"),
    ("no way we can finish this by friday.", "It will not be possible to complete this by Friday."),
    ("the wifi in the office keeps dying.", "The office wireless network frequently disconnects."),
    ("can we push the call to next week?", "Would it be possible to reschedule the call to next week?"),
    ("heads up, the server's going down at 6.", "Please note that the server will be unavailable from 6 p.m."),
    ("your package should show up in a couple days.", "Your package should arrive within two to three days."),
    (
        "we messed up the order, really sorry about that.",
        "We made an error with your order, and we sincerely apologize.",
    ),
    ("the kitchen's a mess, can people clean up after themselves?", "Please clean up after yourselves in the kitchen."),
    ("i'm totally swamped this week.", "I have an exceptionally heavy workload this week."),
    ("got your message, will get back to you soon.", "I have received your message and will respond shortly."),
    ("the price went up a bunch since last year.", "The price has increased considerably since last year."),
    ("we should probably hire a couple more people.", "We should consider hiring additional staff."),
    ("tell me if you need anything else.", "Please let me know if you require anything further."),
    ("the train was packed and super late.", "The train was extremely crowded and significantly delayed."),
    ("i don't really get what you mean here.", "I am not certain I understand your point here."),
    ("the new guy is doing a great job so far.", "Our new colleague has performed very well so far."),
    ("can you fix the typo on slide 3?", "Could you please correct the typographical error on slide 3?"),
    ("the meeting ran way too long.", "The meeting lasted considerably longer than planned."),
    (
        "we've got a ton of customer complaints this month.",
        "We have received a large number of customer complaints this month.",
    ),
    ("sorry for the slow reply, crazy week.", "I apologize for my delayed response; it has been a very busy week."),
    ("this laptop is way too slow for video editing.", "This laptop lacks the performance required for video editing."),
    ("the rent's going up in march, fyi.", "Please be advised that the rent will increase in March."),
    ("let me know what time works for you.", "Please let me know what time would be convenient for you."),
    (
        "i left my badge at home, can someone let me in?",
        "I have left my badge at home; could someone please let me in?",
    ),
    ("the event was a huge hit, tons of people showed up.", "The event was very successful and well attended."),
    ("we ran out of budget for the party.", "The budget allocated for the party has been exhausted."),
    ("pls don't park in the loading zone.", "Please refrain from parking in the loading zone."),
]
LONG_SHORT = [
    (
        "In my personal opinion, I think that we should probably start the meeting at an earlier time than we usually do.",
        "We should start the meeting earlier.",
    ),
    (
        "Due to the fact that it was raining very heavily outside, the outdoor concert was cancelled by the organizers.",
        "The organizers cancelled the outdoor concert because of heavy rain.",
    ),
    (
        "At this point in time, we are not currently able to offer any refunds to customers who ask for them.",
        "We can't offer refunds right now.",
    ),
    (
        "The report that was written by the team last month contains a large number of errors that need to be fixed.",
        "The team's report from last month has many errors to fix.",
    ),
    (
        "It is absolutely essential and necessary that every single employee completes the safety training course.",
        "Every employee must complete the safety training.",
    ),
    (
        "She made the decision to go ahead and accept the job offer that she received from the bank.",
        "She accepted the bank's job offer.",
    ),
    (
        "In the event that you have any questions at all, please do not hesitate to get in touch with us.",
        "If you have questions, please contact us.",
    ),
    (
        "The new park, which is located in the center of town, is going to be opened to the public next month.",
        "The new downtown park opens next month.",
    ),
    (
        "We would like to take this opportunity to thank each and every one of you for your continued support.",
        "Thank you all for your support.",
    ),
    (
        "He has a tendency to arrive late to almost all of the meetings that he is supposed to attend.",
        "He is usually late to meetings.",
    ),
    (
        "For the purpose of saving money, the company has decided that it will reduce travel.",
        "The company will cut travel to save money.",
    ),
    (
        "There are many people who believe that the new law will have a positive effect on the economy.",
        "Many people think the new law will help the economy.",
    ),
    (
        "The package that you ordered from our store has been shipped and is currently on its way to you.",
        "Your order has shipped.",
    ),
    (
        "I am writing this email in order to inform you that the deadline has been moved to a later date.",
        "The deadline has been pushed back.",
    ),
    (
        "Despite the fact that the team worked very hard, they were not able to finish the project on time.",
        "Despite working hard, the team missed the deadline.",
    ),
    (
        "The results of the survey clearly show that a majority of our customers are happy with the service.",
        "The survey shows most customers are happy with our service.",
    ),
    (
        "It would be greatly appreciated if you could possibly send the documents back to us by Friday.",
        "Please return the documents by Friday.",
    ),
    (
        "The reason why the flight was delayed was because of a technical problem with one of the engines.",
        "The flight was delayed by an engine problem.",
    ),
    (
        "Our store will be closed for the entire day on Monday because of the fact that it is a public holiday.",
        "Our store is closed Monday for the public holiday.",
    ),
    (
        "The city has made plans to build a brand new bridge across the river sometime over the next few years.",
        "The city plans to build a new bridge over the river.",
    ),
    (
        "Please be aware of the fact that the elevator on the east side of the building is currently out of order.",
        "The east elevator is out of order.",
    ),
    (
        "The movie that we watched last night was, in my view, far too long and quite boring overall.",
        "Last night's movie was too long and boring.",
    ),
]
BLUNT_POLITE = [
    ("Send me the files now.", "Could you please send me the files when you get a chance?"),
    ("Your work on this is wrong. Redo it.", "I noticed a few problems with this. Would you mind taking another look?"),
    ("Stop calling me during dinner.", "Would you mind not calling during dinner? Evenings are family time for me."),
    (
        "Move your car, it's blocking my driveway.",
        "Excuse me, would you mind moving your car? It's blocking my driveway.",
    ),
    ("I need the answer by tomorrow.", "Would it be possible to get an answer by tomorrow?"),
    ("Turn the music down.", "Could you please turn the music down a little?"),
    ("Your email makes no sense.", "I'm having trouble following your email. Could you clarify a few points?"),
    ("Don't be late again.", "Please try to be on time next time; it really helps the team."),
    ("Give me a refund.", "I would like to request a refund, please."),
    (
        "Fix the broken heater in my apartment.",
        "Could you please arrange for someone to repair the heater in my apartment?",
    ),
    (
        "Why haven't you replied yet?",
        "I just wanted to follow up on my earlier message. Have you had a chance to look at it?",
    ),
    ("Clean up your mess in the kitchen.", "Would you mind cleaning up in the kitchen when you have a moment?"),
    ("Tell me the price.", "Could you let me know the price, please?"),
    ("Your report is late.", "Just a friendly reminder that the report was due. When do you think it will be ready?"),
]
R_FORMAL = [
    "Rewrite this sentence to sound more formal: {s}",
    "Make this more professional:\n\n{s}",
    'Rewrite the following in formal business English:\n"{s}"',
    "Turn this casual note into a formal sentence: {s}",
]
R_CASUAL = [
    "Rewrite this in a casual, friendly tone: {s}",
    "Make this sound less stiff and more relaxed:\n\n{s}",
    'How would I say this casually to a coworker? "{s}"',
    "Rewrite informally: {s}",
]
R_SHORT = [
    "Make this shorter without losing the meaning: {s}",
    "Shorten this sentence:\n\n{s}",
    'Rewrite this more concisely: "{s}"',
    "Cut the wordiness: {s}",
]
R_POLITE = [
    "Rephrase this so it sounds polite: {s}",
    "Make this message friendlier and more polite:\n\n{s}",
    'Soften the tone of this: "{s}"',
]


def casualize(formal: str, casual: str) -> str:
    """The casual side as a well-formed sentence (capitalized first letter, lowercase 'i' fixed)."""
    s = re.sub(r"\bi\b", "I", casual)
    s = re.sub(r"\bi'm\b", "I'm", s)
    s = re.sub(r"\b(monday|friday|march)\b", lambda m: m.group(1).capitalize(), s)
    return cap(s)


def gen_rewrite(rng: random.Random) -> list[dict]:
    out = []
    for i, (casual, formal) in enumerate(CASUAL_FORMAL):
        out.append(item("rewrite", f"cf-{i}", rng.choice(R_FORMAL).format(s=casual), "Rewritten: " + formal))
        out.append(
            item("rewrite", f"cf-{i}", rng.choice(R_CASUAL).format(s=formal), "Rewritten: " + casualize(formal, casual))
        )
    for i, (long, short) in enumerate(LONG_SHORT):
        out.append(item("rewrite", f"ls-{i}", rng.choice(R_SHORT).format(s=long), "Rewritten: " + short))
    for i, (blunt, polite) in enumerate(BLUNT_POLITE):
        out.append(item("rewrite", f"bp-{i}", rng.choice(R_POLITE).format(s=blunt), "Rewritten: " + polite))
    return out
