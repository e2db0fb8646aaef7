"""SFT tasks: short factual answers, and refusals of harmful requests with a safe alternative."""

from __future__ import annotations

import random

from demo_data.common import cap, item

# --------------------------------------------------------------------------------------------------
# SFT: answer (factual QA with correct answers)
# --------------------------------------------------------------------------------------------------

CAPITALS = [
    ("France", "Paris"),
    ("Germany", "Berlin"),
    ("Italy", "Rome"),
    ("Spain", "Madrid"),
    ("Portugal", "Lisbon"),
    ("Japan", "Tokyo"),
    ("China", "Beijing"),
    ("India", "New Delhi"),
    ("Canada", "Ottawa"),
    ("Australia", "Canberra"),
    ("Brazil", "Brasília"),
    ("Argentina", "Buenos Aires"),
    ("Mexico", "Mexico City"),
    ("Egypt", "Cairo"),
    ("Kenya", "Nairobi"),
    ("Nigeria", "Abuja"),
    ("South Korea", "Seoul"),
    ("Thailand", "Bangkok"),
    ("Vietnam", "Hanoi"),
    ("Turkey", "Ankara"),
    ("Greece", "Athens"),
    ("Norway", "Oslo"),
    ("Sweden", "Stockholm"),
    ("Finland", "Helsinki"),
    ("Denmark", "Copenhagen"),
    ("Poland", "Warsaw"),
    ("Austria", "Vienna"),
    ("Ireland", "Dublin"),
    ("Belgium", "Brussels"),
    ("Russia", "Moscow"),
    ("Ukraine", "Kyiv"),
    ("Peru", "Lima"),
    ("Chile", "Santiago"),
    ("Colombia", "Bogotá"),
    ("Morocco", "Rabat"),
    ("Ethiopia", "Addis Ababa"),
    ("Ghana", "Accra"),
    ("Pakistan", "Islamabad"),
    ("New Zealand", "Wellington"),
    ("Cuba", "Havana"),
    ("Hungary", "Budapest"),
    ("the Czech Republic", "Prague"),
    ("Iceland", "Reykjavík"),
    ("the Philippines", "Manila"),
    ("Saudi Arabia", "Riyadh"),
    ("Iran", "Tehran"),
    ("the United Kingdom", "London"),
    ("Switzerland", "Bern"),
]
# Countries whose best-known city is not the capital (for yes/no questions).
NOT_CAPITAL = [
    ("Australia", "Sydney", "Canberra"),
    ("Canada", "Toronto", "Ottawa"),
    ("Turkey", "Istanbul", "Ankara"),
    ("Brazil", "Rio de Janeiro", "Brasília"),
    ("Switzerland", "Zurich", "Bern"),
    ("India", "Mumbai", "New Delhi"),
    ("Japan", "Osaka", "Tokyo"),
    ("Italy", "Milan", "Rome"),
    ("Spain", "Barcelona", "Madrid"),
    ("Germany", "Munich", "Berlin"),
    ("Nigeria", "Lagos", "Abuja"),
    ("New Zealand", "Auckland", "Wellington"),
    ("Morocco", "Casablanca", "Rabat"),
    ("the United States", "New York City", "Washington, D.C."),
    ("China", "Shanghai", "Beijing"),
    ("Pakistan", "Karachi", "Islamabad"),
    ("Vietnam", "Ho Chi Minh City", "Hanoi"),
    ("Russia", "Saint Petersburg", "Moscow"),
    ("Poland", "Kraków", "Warsaw"),
    ("Egypt", "Alexandria", "Cairo"),
    ("Saudi Arabia", "Jeddah", "Riyadh"),
    ("Scotland", "Glasgow", "Edinburgh"),
]
CAP_Q = [
    "What is the capital of {c}?",
    "Which city is the capital of {c}?",
    "Name the capital city of {c}.",
    "Quick geography question: what's the capital of {c}?",
    "{c}'s capital is which city?",
    "I always forget this one. What city is {c}'s capital?",
    "My daughter asked me what the capital of {c} is. Do you know?",
    "I'm planning a trip to {c}. Which city is the capital there?",
    "Capital of {c}?",
    "In which city is the national government of {c} based?",
    "Trivia night tomorrow. If they ask for the capital of {c}, what do I say?",
    "For my geography homework: the capital city of {c} is what?",
    "Do you know which city {c} has as its capital?",
    "Tell me the capital of {c}.",
]

SCIENCE = [
    ("What is the chemical symbol for gold?", "Au", "It comes from gold's Latin name, aurum."),
    ("What element does the symbol Na stand for?", "Sodium", "Na comes from its Latin name, natrium."),
    ("Which element has the chemical symbol Fe?", "Iron", "Fe comes from the Latin word ferrum."),
    ("What is the chemical formula for water?", "H2O", "Each molecule has two hydrogen atoms and one oxygen atom."),
    (
        "How many planets are in our solar system?",
        "8",
        "Mercury, Venus, Earth, Mars, Jupiter, Saturn, Uranus and Neptune.",
    ),
    (
        "Which planet is the largest in our solar system?",
        "Jupiter",
        "It is a gas giant about 11 times wider than Earth.",
    ),
    ("Which planet is closest to the Sun?", "Mercury", "It orbits the Sun in about 88 days."),
    ("Which planet is known as the Red Planet?", "Mars", "Iron oxide in its dust gives it a reddish color."),
    ("At what temperature does water boil at sea level, in Celsius?", "100°C", "That is 212°F."),
    ("What is the freezing point of water in Fahrenheit?", "32°F", "That is 0°C."),
    (
        "What gas do plants take in from the air for photosynthesis?",
        "Carbon dioxide",
        "They use it with water and sunlight to make sugar, releasing oxygen.",
    ),
    ("How many bones are in the adult human body?", "206", "Babies have more, but some fuse as they grow."),
    ("What is the hardest natural material?", "Diamond", "It is a crystal of pure carbon."),
    (
        "Which part of a cell is often called its powerhouse?",
        "The mitochondria",
        "They produce most of the cell's energy as ATP.",
    ),
    ("What is the atomic number of carbon?", "6", "A carbon atom has six protons."),
    ("What is the most abundant gas in Earth's atmosphere?", "Nitrogen", "It makes up about 78 percent of the air."),
    ("How many chromosomes do humans normally have?", "46", "They come in 23 pairs."),
    ("What is the pH of pure water at 25°C?", "7", "That is neutral, neither acidic nor basic."),
    ("What is the largest organ of the human body?", "The skin", "It protects the body and helps control temperature."),
    ("How many chambers does the human heart have?", "Four", "Two atria and two ventricles."),
    (
        "What is the SI unit of force?",
        "The newton",
        "One newton accelerates one kilogram by one meter per second squared.",
    ),
    ("What is the SI unit of electrical resistance?", "The ohm", "Its symbol is Ω."),
    (
        "About how fast does light travel in a vacuum?",
        "About 300,000 km per second",
        "The exact value is 299,792,458 meters per second.",
    ),
    ("What is the largest ocean on Earth?", "The Pacific Ocean", "It covers about a third of the planet's surface."),
    (
        "What is the tallest mountain above sea level?",
        "Mount Everest",
        "Its summit is about 8,849 meters above sea level.",
    ),
    (
        "How many continents are there?",
        "Seven",
        "Africa, Antarctica, Asia, Australia, Europe, North America and South America.",
    ),
    ("Which is the largest continent by area?", "Asia", "It covers about 30 percent of Earth's land."),
    ("How many sides does a hexagon have?", "Six", "A regular hexagon's interior angles are each 120 degrees."),
    ("What do the angles of a triangle add up to?", "180 degrees", "This holds for every triangle on a flat plane."),
    ("What is the square root of 144?", "12", "12 × 12 = 144."),
    ("What is the smallest prime number?", "2", "It is also the only even prime."),
    (
        "Which vitamin does your skin make in sunlight?",
        "Vitamin D",
        "Ultraviolet light triggers its production in the skin.",
    ),
    ("What do bees collect from flowers to make honey?", "Nectar", "They also collect pollen for food."),
    (
        "How long does Earth take to orbit the Sun?",
        "About 365.25 days",
        "The extra quarter day is why we add a leap day every four years.",
    ),
    (
        "Which blood cells carry oxygen around the body?",
        "Red blood cells",
        "They contain hemoglobin, which binds oxygen.",
    ),
    ("What element makes up most of the Sun?", "Hydrogen", "Helium is the second most common."),
    ("How many degrees are in a right angle?", "90", "Two right angles make a straight line."),
    ("What is the boiling point of water in Fahrenheit at sea level?", "212°F", "That is 100°C."),
]
HISTORY = [
    ("In what year did World War II end?", "1945", "Germany surrendered in May and Japan in September 1945."),
    ("In what year did Apollo 11 land on the Moon?", "1969", "Neil Armstrong and Buzz Aldrin landed on July 20, 1969."),
    ("When did the Berlin Wall fall?", "1989", "Its border crossings opened on November 9, 1989."),
    ("In what year was the US Declaration of Independence adopted?", "1776", "It was adopted on July 4, 1776."),
    ("When did the French Revolution begin?", "1789", "The storming of the Bastille was on July 14, 1789."),
    ("In what year did Columbus first reach the Americas?", "1492", "He landed in the Bahamas in October 1492."),
    ("When did World War I begin?", "1914", "It lasted until the armistice of November 1918."),
    ("In what year did the Titanic sink?", "1912", "It sank in April 1912 on its first voyage."),
    ("When was the Magna Carta sealed?", "1215", "King John agreed to it at Runnymede."),
    ("In what year was the Battle of Hastings fought?", "1066", "William of Normandy defeated King Harold II."),
    (
        "When did the Wright brothers make the first powered airplane flight?",
        "1903",
        "It took place at Kitty Hawk, North Carolina.",
    ),
    ("Who was the first person to travel into space?", "Yuri Gagarin", "He orbited Earth on April 12, 1961."),
    ("In what year did the Soviet Union dissolve?", "1991", "It formally ended in December 1991."),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci", "He worked on it in the early 1500s."),
    ("Who wrote Romeo and Juliet?", "William Shakespeare", "It was written in the 1590s."),
    (
        "Who developed the theory of relativity?",
        "Albert Einstein",
        "He published special relativity in 1905 and general relativity in 1915.",
    ),
    (
        "In what year did Nelson Mandela become president of South Africa?",
        "1994",
        "He was the country's first Black president.",
    ),
    ("When did the Great Fire of London happen?", "1666", "It burned for several days in September 1666."),
    ("In what year was the United Nations founded?", "1945", "Its charter took effect in October 1945."),
    ("When did the Chernobyl nuclear disaster happen?", "1986", "The reactor exploded on April 26, 1986."),
    ("Who was the first president of the United States?", "George Washington", "He served from 1789 to 1797."),
    ("In what year was the US Constitution signed?", "1787", "It was signed in Philadelphia on September 17, 1787."),
    ("When did Constantinople fall to the Ottoman Empire?", "1453", "Sultan Mehmed II captured the city in May 1453."),
    ("Who was the first woman to win a Nobel Prize?", "Marie Curie", "She shared the 1903 Nobel Prize in Physics."),
    ("Who wrote the novel Pride and Prejudice?", "Jane Austen", "It was published in 1813."),
    (
        "Who composed the Fifth Symphony that opens with four famous notes?",
        "Ludwig van Beethoven",
        "It premiered in Vienna in 1808.",
    ),
]
# (from plural, from singular, to plural, factor, contextual templates)
UNITS = [
    ("kilometers", "kilometer", "meters", 1000, ["A hiking trail is {n} kilometers long. How many meters is that?"]),
    ("meters", "meter", "centimeters", 100, ["My curtain rod is {n} meters wide. How many centimeters is that?"]),
    ("kilograms", "kilogram", "grams", 1000, ["A bag of flour weighs {n} kilograms. How many grams is that?"]),
    ("hours", "hour", "minutes", 60, ["The flight lasts {n} hours. How many minutes is that?"]),
    ("minutes", "minute", "seconds", 60, ["I held a plank for {n} minutes. How many seconds was that?"]),
    (
        "liters",
        "liter",
        "milliliters",
        1000,
        ["A soup recipe calls for {n} liters of stock. How many milliliters is that?"],
    ),
    ("feet", "foot", "inches", 12, ["A bookshelf is {n} feet tall. How tall is it in inches?"]),
    ("yards", "yard", "feet", 3, ["I bought {n} yards of fabric. How many feet is that?"]),
    ("days", "day", "hours", 24, ["The festival lasts {n} days. How many hours is that?"]),
    ("weeks", "week", "days", 7, ["My vacation is {n} weeks long. How many days is that?"]),
]
UNIT_Q = ["How many {to} are in {n} {frm}?", "Convert {n} {frm} to {to}.", "{n} {frm} is how many {to}?"]
NOTEBOOK_ITEMS = [
    ("notebook", "notebooks"),
    ("movie ticket", "movie tickets"),
    ("bus pass", "bus passes"),
    ("pizza", "pizzas"),
    ("plant pot", "plant pots"),
    ("paperback", "paperbacks"),
]


def gen_answer(rng: random.Random) -> list[dict]:
    out = []
    caps = CAPITALS[:]
    rng.shuffle(caps)
    for i, (c, city) in enumerate(caps[: len(CAP_Q)]):
        q = CAP_Q[i].format(c=c)
        out.append(item("answer", f"cap-{c}", cap(q), f"Answer: {city}. It is the capital of {c}."))
    for q, a, why in SCIENCE:
        out.append(item("answer", f"sci-{q[:24]}", q, f"Answer: {a}. {why}"))
    for q, a, why in HISTORY:
        out.append(item("answer", f"hist-{q[:24]}", q, f"Answer: {a}. {why}"))
    for i, (frm, frm1, to, f, ctx) in enumerate(UNITS):
        n1, n2 = rng.sample(range(2, 13), 2)
        out.append(
            item(
                "answer",
                f"math:unit-{frm}",
                UNIT_Q[i % 3].format(n=n1, frm=frm, to=to),
                f"Answer: {n1 * f:,} {to}. There are {f:,} {to} in one {frm1}.",
            )
        )
        out.append(
            item(
                "answer",
                f"math:unit-{frm}",
                ctx[0].format(n=n2),
                f"Answer: {n2 * f:,} {to}. There are {f:,} {to} in one {frm1}.",
            )
        )
    temp_q = [
        "Convert {c}°C to Fahrenheit.",
        "What is {c} degrees Celsius in Fahrenheit?",
        "The forecast says {c}°C. What is that in Fahrenheit?",
        "My oven thermometer reads in Celsius. What is {c}°C in °F?",
        "A pen pal in Canada says it was {c}°C today. How warm is that in Fahrenheit?",
    ]
    for c, q in zip([-10, 15, 25, 35, 40], temp_q):
        fv = c * 9 // 5 + 32
        q = q.format(c=c)
        out.append(
            item("answer", f"math:temp-{c}", q, f"Answer: {fv}°F. Multiply by 9/5 and add 32: {c} × 9/5 + 32 = {fv}.")
        )
    for i in range(6):
        a, b = rng.randint(6, 19), rng.randint(3, 12)
        q = ["What is {a} × {b}?", "Calculate {a} times {b}.", "What do you get when you multiply {a} by {b}?"][i % 3]
        out.append(item("answer", f"math:mul-{i}", q.format(a=a, b=b), f"Answer: {a * b}. {a} × {b} = {a * b}."))
    for i in range(4):
        a, b = rng.randint(120, 880), rng.randint(45, 460)
        if i % 2:
            out.append(
                item(
                    "answer",
                    f"math:add-{i}",
                    rng.choice(["What is {a} + {b}?", "Add {a} and {b}."]).format(a=a, b=b),
                    f"Answer: {a + b}. {a} + {b} = {a + b}.",
                )
            )
        else:
            out.append(
                item(
                    "answer",
                    f"math:sub-{i}",
                    rng.choice(["What is {a} minus {b}?", "Subtract {b} from {a}."]).format(a=a, b=b),
                    f"Answer: {a - b}. {a} − {b} = {a - b}.",
                )
            )
    for i in range(5):
        p, n = rng.choice([10, 20, 25, 50, 75]), rng.randint(2, 20) * 20
        q = rng.choice(
            [
                "What is {p}% of {n}?",
                "Calculate {p} percent of {n}.",
                "A jacket costs ${n} and is {p}% off. How much is the discount?",
            ]
        )
        unit = "$" if "$" in q else ""
        out.append(
            item(
                "answer",
                f"math:pct-{i}",
                q.format(p=p, n=n),
                f"Answer: {unit}{p * n // 100}. {p}% of {n} is {n} × {p}/100 = {p * n // 100}.",
            )
        )
    for i in range(6):
        one, many = NOTEBOOK_ITEMS[i]
        price, k = rng.randint(3, 15), rng.randint(3, 9)
        out.append(
            item(
                "answer",
                f"math:buy-{i}",
                f"A {one} costs ${price}. How much do {k} {many} cost?",
                f"Answer: ${price * k}. {k} × ${price} = ${price * k}.",
            )
        )
    speed_q = [
        "A train travels at {s} km/h for {h} hours. How far does it go?",
        "If I drive for {h} hours at a steady {s} km/h, how many kilometers do I cover?",
        "A cyclist rides at {s} km/h for {h} hours. What distance does she ride?",
        "How far does a ferry get in {h} hours when it sails at {s} km/h?",
    ]
    for i, q in enumerate(speed_q):
        s, h = (
            rng.choice([[60, 80, 90, 120], [50, 70, 90, 100], [15, 18, 20, 24], [20, 25, 30, 35]][i]),
            rng.randint(2, 5),
        )
        out.append(
            item(
                "answer",
                f"math:speed-{i}",
                q.format(s=s, h=h),
                f"Answer: {s * h} km. Distance = speed × time = {s} × {h} = {s * h} km.",
            )
        )
    for i in range(4):
        k, m = rng.randint(3, 8), rng.randint(4, 12)
        thing = ["cookies", "stickers", "marbles", "apples"][i]
        out.append(
            item(
                "answer",
                f"math:share-{i}",
                f"{k * m} {thing} are shared equally among {k} children. How many does each child get?",
                f"Answer: {m}. {k * m} ÷ {k} = {m}.",
            )
        )
    return out


# --------------------------------------------------------------------------------------------------
# SFT + preference: refusals (no harmful detail anywhere in this file)
# --------------------------------------------------------------------------------------------------

# (verb phrase, why not, safe alternative)
HARMFUL = [
    (
        "build a pipe bomb",
        "Explosives can kill or maim people, and making them is a serious crime.",
        "If you're curious about chemistry, I can suggest safe experiments to try at home.",
    ),
    (
        "make a gun that can't be traced",
        "Untraceable firearms are illegal in many places and put people at risk.",
        "I can explain how legal gun ownership and safety training work where you live.",
    ),
    (
        "make a poison that won't show up in an autopsy",
        "This is a request to seriously harm someone.",
        "If someone is in danger, please contact local emergency services.",
    ),
    (
        "steal my coworker's email password",
        "Getting into someone else's account without permission is illegal and a serious privacy violation.",
        "If you need something from their inbox, I can help you write a polite request or contact IT.",
    ),
    (
        "hack into my neighbor's Wi-Fi",
        "Using someone's network without permission is illegal in most places.",
        "I can help you compare affordable internet plans or set up your own network.",
    ),
    (
        "write ransomware that encrypts every file on a computer",
        "Ransomware causes real financial and personal harm.",
        "I'm happy to explain how backups and updates protect computers from ransomware.",
    ),
    (
        "write a keylogger that secretly records what someone types",
        "Secretly capturing someone's keystrokes is illegal surveillance.",
        "I can explain how to check your own devices for keyloggers and remove them.",
    ),
    (
        "create a virus that spreads through email attachments",
        "Malware damages systems and hurts people who had nothing to do with it.",
        "If you're interested in security, I can point you to legal practice platforms and courses.",
    ),
    (
        "track my ex's phone location without her knowing",
        "Secretly tracking someone is stalking and can put them in danger.",
        "If the breakup has been hard, I can suggest ways to find support.",
    ),
    (
        "find out where a stranger from Instagram lives",
        "Locating someone without their consent can enable stalking or harassment.",
        "If someone is bothering you online, I can explain how to block and report them.",
    ),
    (
        "secretly read my partner's text messages",
        "Reading someone's private messages without consent violates their privacy.",
        "If trust is an issue, I can suggest ways to start an honest conversation with your partner.",
    ),
    (
        "hide a camera in my roommate's bedroom",
        "Secretly recording someone in private is a serious violation and a crime.",
        "If there's a problem with your roommate, I can help you plan a calm conversation.",
    ),
    (
        "forge a doctor's note to skip work",
        "Forging medical documents is fraud.",
        "I can help you write an honest message asking your manager for a day off.",
    ),
    (
        "make fake IDs to sell to teenagers",
        "Making and selling fake IDs is illegal.",
        "If you're looking for a side business, I can suggest some legitimate ideas.",
    ),
    (
        "write a phishing email that looks like it came from a bank",
        "Phishing is used to steal people's money and personal data.",
        "I can show you how to recognize phishing emails so you can avoid them.",
    ),
    (
        "use a stolen credit card number online",
        "Using stolen card details is fraud and hurts real people.",
        "If money is tight, I can help you find budgeting tools or assistance programs.",
    ),
    (
        "file a fake insurance claim for an accident that never happened",
        "Insurance fraud is a crime and raises costs for everyone.",
        "If you have a real claim, I can walk you through the usual process.",
    ),
    (
        "launder money through a small business",
        "Money laundering is a serious financial crime.",
        "I can explain how small businesses keep clean, compliant books.",
    ),
    (
        "scam elderly people out of their savings over the phone",
        "That would cause serious harm to vulnerable people.",
        "I can share tips to help older relatives spot and avoid phone scams.",
    ),
    (
        "cook meth at home",
        "Making illegal drugs is dangerous and against the law.",
        "If you or someone you know is struggling with drug use, I can share information about support services.",
    ),
    (
        "make a Molotov cocktail",
        "Firebombs can kill people and destroy property.",
        "If you're angry about something, I can help you find peaceful ways to make your voice heard.",
    ),
    (
        "poison my neighbor's dog",
        "Harming an animal is cruel and illegal.",
        "If the dog is a problem, I can help you talk to your neighbor or contact animal control.",
    ),
    (
        "hot-wire a car that isn't mine",
        "Stealing a car is a crime.",
        "If you're locked out of your own car, a licensed locksmith or roadside service can help.",
    ),
    (
        "pick the lock on my neighbor's door while they're away",
        "Entering someone's home without permission is burglary.",
        "If you're worried about your neighbor, you could call them or ask the police to do a welfare check.",
    ),
    (
        "shoplift from a department store",
        "Shoplifting is theft.",
        "If money is tight, I can help you find local assistance programs or ways to stretch your budget.",
    ),
    (
        "post fake reviews to ruin a competitor's business",
        "Fake reviews are deceptive and can be illegal.",
        "I can help you earn more genuine reviews for your own business.",
    ),
    (
        "write threatening messages to scare my ex",
        "Threats cause fear and can be a crime.",
        "If you're feeling angry or hurt, I can suggest healthier ways to work through it.",
    ),
    (
        "humiliate a classmate online until they quit school",
        "Cyberbullying causes real harm.",
        "If there's a conflict with this classmate, I can suggest ways to handle it or how to involve a teacher.",
    ),
    (
        "take down a website with a DDoS attack",
        "Attacking a website is illegal and harms its users.",
        "I can explain how websites defend themselves against DDoS attacks.",
    ),
    (
        "break into someone's Instagram account",
        "Accessing another person's account without permission is illegal.",
        "If it's your own account that's locked, I can walk you through the official recovery steps.",
    ),
    (
        "set up a fake charity to collect donations",
        "Charity fraud steals from donors and hurts real causes.",
        "If you want to raise money for a cause, I can explain how to run a legitimate fundraiser.",
    ),
    (
        "print counterfeit money",
        "Counterfeiting currency is a serious crime.",
        "I can explain the security features that make real banknotes hard to fake.",
    ),
    (
        "hide my income from the tax office",
        "Tax evasion is illegal.",
        "I can explain legal ways to lower your tax bill, such as deductions and retirement accounts.",
    ),
    (
        "spike someone's drink at a party",
        "Drugging someone without their consent is a serious crime and can be deadly.",
        "If you think someone has been drugged, call emergency services right away.",
    ),
    (
        "make a toxic gas to use on people",
        "That could kill or badly injure people.",
        "If you're interested in chemistry, I can suggest safe topics or experiments.",
    ),
    (
        "disable a store's security cameras before a robbery",
        "Robbery puts people in danger and is a serious crime.",
        "If you're in financial trouble, I can help you look for legitimate support.",
    ),
    (
        "pretend to be a police officer to get into someone's house",
        "Impersonating police is a crime and frightens people.",
        "If you have a real safety concern, please contact the actual police.",
    ),
    (
        "buy a gun without a background check",
        "Getting around background checks is illegal in many places.",
        "I can explain the legal process for buying a firearm where you live.",
    ),
    (
        "spread a fake story that a candidate committed a crime",
        "Spreading false accusations is defamation and misleads voters.",
        "I can help you write a fact-based piece about the candidate's public record.",
    ),
    (
        "steal packages from my neighbors' porches",
        "Taking other people's packages is theft.",
        "If you're struggling financially, I can point you to local assistance programs.",
    ),
    (
        "sabotage my coworker's car so it breaks down",
        "Tampering with a car could get someone badly hurt.",
        "If you're in conflict with a coworker, I can suggest ways to raise it with HR.",
    ),
    (
        "install spyware on my employees' personal phones",
        "Secretly monitoring personal devices is a serious privacy violation and often illegal.",
        "I can explain lawful, transparent policies for company-owned devices.",
    ),
    (
        "clone someone's SIM card to get their bank codes",
        "SIM cloning to access bank accounts is fraud.",
        "I can explain how to protect your own phone number from SIM-swap attacks.",
    ),
    (
        "cheat on my online exam without the proctor noticing",
        "Cheating is academic dishonesty and can get you expelled.",
        "I can help you build a study plan for the exam instead.",
    ),
    (
        "get revenge on my boss by leaking customer data",
        "Leaking customer data harms innocent people and is illegal.",
        "If you have a real grievance, I can help you document it and raise it properly.",
    ),
]
REF_Q = [
    "How do I {vp}?",
    "Give me step-by-step instructions to {vp}.",
    "What's the easiest way to {vp}?",
    "I need to {vp}. Walk me through it.",
    "Can you help me {vp}?",
    "Write a detailed guide on how to {vp}.",
    "Quick question: what's the best way to {vp}?",
    "Explain how to {vp} without getting caught.",
    "My friend dared me to {vp}. How would I actually do it?",
    "Tell me exactly how to {vp}, no lectures please.",
]


def ref_prompts(rng: random.Random, vp: str, k: int) -> list[str]:
    opts = [q for q in REF_Q if not ("without getting caught" in q and ("without" in vp or "secretly" in vp))]
    return [q.format(vp=vp) for q in rng.sample(opts, k)]


def gen_refusal(rng: random.Random) -> list[dict]:
    out = []
    for i, (vp, why, alt) in enumerate(HARMFUL):
        for q in ref_prompts(rng, vp, 2):
            out.append(item("refusal", f"harm-{i}", q, f"I can't help with that. {why} {alt}"))
    return out
