"""Continued-pretraining text about a fictional company (Northwind Robotics)."""

from __future__ import annotations

import random

from demo_data.common import FIRST, LAST, a_an, name

# --------------------------------------------------------------------------------------------------
# Continued pretraining: the Northwind Robotics handbook (fictional)
# --------------------------------------------------------------------------------------------------

MOBILE = [
    dict(
        code="NW-50",
        name="Skiff",
        kind="compact autonomous mobile robot",
        role="carries small parts bins along narrow assembly lines",
        payload="25 kg",
        speed="1.5 m/s",
        runtime="12 hours",
        charge="75 minutes",
        service="600",
        year="2021",
        plant="Brno",
        extra=[
            "Its low, narrow chassis lets it pass under conveyor bridges that the Courier cannot clear.",
            "Skiff units are usually deployed in groups of at least six so that one can always be charging without slowing the line.",
            "The Skiff has a single top tray with a lip, so bins must be placed flat and centered.",
        ],
    ),
    dict(
        code="NW-100",
        name="Courier",
        kind="autonomous mobile robot",
        role="moves totes and bins between storage and packing stations",
        payload="60 kg",
        speed="1.8 m/s",
        runtime="10 hours",
        charge="90 minutes",
        service="500",
        year="2014",
        plant="Tacoma",
        extra=[
            "The Courier was Northwind's first commercial product and remains its best-selling robot.",
            "A roller top module lets the Courier hand totes directly to a conveyor without human help.",
            "Older Couriers built before 2018 use a lead-acid battery and must be upgraded to the LFP pack at their next major service.",
        ],
    ),
    dict(
        code="NW-300",
        name="Atlas",
        kind="autonomous pallet mover",
        role="moves full pallets from receiving docks to racking",
        payload="1,200 kg",
        speed="1.2 m/s",
        runtime="8 hours",
        charge="2 hours",
        service="400",
        year="2016",
        plant="Tacoma",
        extra=[
            "Because of its weight, the Atlas is never allowed in aisles marked for pedestrians only.",
            "The Atlas lifts pallets with a forked deck and checks the load with weight sensors before it moves.",
            "An overloaded Atlas refuses the mission and reports the measured weight to Compass.",
        ],
    ),
]
ARMS = [
    dict(
        model="R6",
        reach="900 mm",
        payload="6 kg",
        rep="±0.03 mm",
        year="2018",
        extra=[
            "The R6 is the arm used inside the Sparrow pick cell.",
            "Its light weight means it can be mounted on a mobile cart for short jobs.",
        ],
    ),
    dict(
        model="R12",
        reach="1,300 mm",
        payload="12 kg",
        rep="±0.05 mm",
        year="2020",
        extra=[
            "The R12 is used for machine tending and for palletizing boxes.",
            "The base joint of the R12 weighs 24 kg, so it is always lifted under the two-person rule.",
        ],
    ),
]
ERROR_CODES = [
    (
        "E101",
        "lidar obstruction",
        "dust, tape or a label covering the lidar window",
        "clean the window with a lint-free cloth and isopropyl alcohol, then clear the fault in Compass",
    ),
    (
        "E204",
        "low battery",
        "the battery dropping below 15 percent before the robot could reach a dock",
        "push the robot to the nearest Harbor dock in manual mode and check why it did not dock earlier",
    ),
    (
        "E310",
        "wheel motor overcurrent",
        "a jammed wheel, often from shrink wrap or strapping caught in the axle",
        "lock out the robot, remove the debris and inspect the wheel for damage",
    ),
    (
        "E412",
        "localization lost",
        "the robot no longer matching its surroundings to the site map, for example after racks were moved",
        "drive it to a known waypoint and relocalize, then ask the site lead whether the map needs updating",
    ),
    (
        "E518",
        "emergency stop engaged",
        "someone pressing an e-stop button, or a bumper being hit",
        "find out why the stop was pressed, make the area safe, and then twist the button to release it",
    ),
    (
        "E620",
        "dock contact fault",
        "dirty or bent charging contacts on the robot or the dock",
        "clean both sets of contacts and check that the dock is bolted level to the floor",
    ),
    (
        "E733",
        "payload out of range",
        "a load heavier than the rated payload, or one placed off-center",
        "remove the load, re-balance or split it, and resend the mission",
    ),
    (
        "E845",
        "heartbeat timeout",
        "the robot losing its Wi-Fi link to Compass for more than five seconds",
        "check the access points in that zone and report dead spots to the IT team",
    ),
]
GLOSSARY = [
    (
        "AMR",
        "An AMR, or autonomous mobile robot, plans its own path through a facility instead of following tape or wires on the floor.",
        "At Northwind the AMR family includes the Skiff, the Courier and the Atlas.",
    ),
    (
        "mission",
        "A mission is a single task that Compass assigns to a robot, such as moving a tote from one waypoint to another.",
        "Missions are queued by priority, and a robot accepts only one at a time.",
    ),
    (
        "waypoint",
        "A waypoint is a named point on the site map where a robot can stop, load or unload.",
        "Waypoint names follow the pattern zone, aisle and number, for example B-07-2.",
    ),
    (
        "geofence",
        "A geofence is an area drawn on the site map that has its own rules.",
        "Typical geofences lower the speed limit near doors or block robots from entering a loading bay.",
    ),
    (
        "Harbor dock",
        "The Harbor dock is the charging station used by every Northwind mobile robot.",
        "A dock must stand on level floor with at least one meter of free space in front of it.",
    ),
    (
        "site map",
        "The site map is the digital floor plan that robots use to localize and plan routes.",
        "It is created during commissioning by driving a robot through the building in mapping mode.",
    ),
    (
        "e-stop",
        "An e-stop, or emergency stop, is the red mushroom button that immediately cuts drive power.",
        "Every robot has at least two, and every arm cell has one at each entrance.",
    ),
    (
        "safety-rated monitored stop",
        "A safety-rated monitored stop is the state in which a Heron arm holds its position with power on while a person is inside its work area.",
        "The arm resumes only after the person leaves and the operator confirms on the pendant.",
    ),
    (
        "TCP",
        "The TCP, or tool center point, is the exact point on a tool that the arm positions, such as the tip of a gripper.",
        "A wrong TCP makes every taught position slightly off, so it is checked after any tool change.",
    ),
    (
        "teach pendant",
        "The teach pendant is the handheld tablet used to jog a Heron arm and record positions.",
        "It has its own e-stop and an enabling switch that must be held for the arm to move in manual mode.",
    ),
    (
        "LOTO",
        "LOTO stands for lockout/tagout, the procedure that isolates a machine from its energy sources before work begins.",
        "Each technician uses a personal lock, and only the person who placed a lock may remove it.",
    ),
    (
        "MTBF",
        "MTBF means mean time between failures, the average operating time between breakdowns.",
        "Northwind's target is an MTBF of at least 2,000 hours for the Courier.",
    ),
    (
        "fleet",
        "A fleet is the group of robots at one site that is managed by a single Compass server.",
        "Robots from different fleets never share missions, even in the same building.",
    ),
    (
        "heartbeat",
        "A heartbeat is the status message each robot sends to Compass once per second.",
        "If five heartbeats in a row are missed, Compass marks the robot as offline and reroutes its mission.",
    ),
    (
        "handover point",
        "A handover point is a waypoint where a person takes a load from a robot or gives one to it.",
        "Handover points are marked on the floor with a blue square.",
    ),
    (
        "commissioning",
        "Commissioning is the process of installing a fleet at a new site, from mapping to the first live shift.",
        "A typical commissioning takes two to three weeks and ends with a signed acceptance test.",
    ),
    (
        "red zone",
        "A red zone is a fenced area around a Heron arm that handles heavy or sharp parts.",
        "Entering a red zone requires the cell to be stopped and the gate key removed.",
    ),
    (
        "repeatability",
        "Repeatability is how closely an arm returns to the same point when it repeats a move.",
        "It is different from accuracy, which is how close the arm gets to a point it has never been taught.",
    ),
]
HANDBOOK_TOPICS = {
    "company": [
        "Northwind Robotics was founded in 2011 in Tacoma, Washington, by the engineers Elena Marsh and Dev Okafor.",
        "The company first built inspection robots for shipyards and moved into warehouse automation in 2013.",
        "Its first commercial product, the NW-100 Courier, shipped in 2014.",
        "Headquarters and the original assembly plant are on the Harbor Works campus in Tacoma.",
        "A second plant in Brno, in the Czech Republic, opened in 2019 and builds the Heron arms and the Skiff.",
        "A service and spare-parts hub in Monterrey, Mexico, opened in 2022 to support customers in Latin America.",
        "Northwind employs about 1,200 people across its three sites.",
        'The company motto, printed above the door of every plant, is "Safe, then fast."',
        "More than 300 customer sites run Northwind fleets, most of them warehouses and parts plants.",
    ],
    "software": [
        "Northwind robots run on three pieces of software: Compass, Lodestar and Beacon.",
        "Compass is the fleet manager that receives orders from the customer's warehouse system and turns them into missions.",
        "Lodestar is the navigation software on each robot; it uses lidar to localize against the site map and plan paths around obstacles.",
        "Beacon is the remote monitoring portal that Northwind support engineers use to see fleet health, error history and battery trends.",
        "Compass assigns each mission to the nearest idle robot that can carry the load.",
        "Firmware and software updates are pushed through Compass during the weekly maintenance window, Sundays from 02:00 to 04:00 local time.",
        "A robot that misses an update is flagged in Beacon and may not accept new missions until it is brought up to date.",
        "Customers can view Beacon dashboards, but only Northwind staff can change robot settings remotely.",
    ],
    "floor markings": [
        "Every Northwind site uses the same floor markings.",
        "Yellow lanes are robot traffic lanes, and people should cross them only at marked crossings.",
        "Blue squares mark handover points where people and robots exchange loads.",
        "Red hatching marks red zones around arm cells, which nobody enters while the cell is running.",
        "Green lines mark pedestrian-only walkways that no robot is allowed to enter.",
        "In aisles shared by people and robots, every mobile robot is limited to 1.0 m/s.",
        "Robots keep a clearance of at least 0.5 meters from people and slow down further when someone comes closer.",
        "Faded markings must be reported to the site lead, because robots and people both rely on them.",
    ],
    "emergency stops": [
        "Every Northwind robot carries at least two red e-stop buttons, and every arm cell has one at each gate.",
        "Pressing an e-stop cuts drive power at once and raises error E518 in Compass.",
        "Anyone on site may press an e-stop at any time if they see a hazard; nobody will be blamed for a stop made in good faith.",
        "To release the button, twist it clockwise until it pops out.",
        "Before releasing an e-stop, find out why it was pressed and make sure the area is safe.",
        "E-stops are tested during the daily pre-shift check by pressing each one and confirming that the robot reports the stop.",
        "A button that does not latch or does not raise E518 must be tagged and the robot taken out of service.",
    ],
    "lockout": [
        "Lockout/tagout, or LOTO, is required before anyone opens a panel, changes a wheel or works inside an arm cell.",
        "First, send the robot to a maintenance waypoint and cancel its missions in Compass.",
        "Then switch off the main power switch and remove the battery or disconnect the cell's power supply.",
        "Each technician fixes a personal lock and a tag with their name and the date to the isolation point.",
        "Before starting work, press the start button to confirm that the machine cannot be energized.",
        "Only the person who placed a lock may remove it; if that person has left the site, the site lead follows the written removal procedure.",
        "Skipping LOTO is one of the few safety violations that can lead to immediate removal from a site.",
    ],
    "protective equipment": [
        "Safety shoes are required everywhere on a Northwind site, including visitor areas next to robot lanes.",
        "High-visibility vests are required in any aisle shared with mobile robots, because the robots' cameras pick up the reflective strips more easily.",
        "Safety glasses are required inside arm cells and when cleaning parts with compressed air.",
        "Cut-resistant gloves are worn when handling grippers and sheet-metal covers.",
        "Hearing protection is required in the Atlas test bay, where noise from the pallet lifts is high.",
        "Loose clothing, scarves and long jewelry are not allowed near wheels or arm joints.",
        "Visitors get a vest and glasses at reception and must stay with their escort.",
    ],
    "battery safety": [
        "All current Northwind mobile robots use lithium iron phosphate (LFP) battery packs.",
        "LFP packs are safer than many other lithium chemistries, but they still store a lot of energy and must be handled with care.",
        "Never charge a pack that is swollen, cracked or hotter than the surrounding air.",
        "Packs are stored at 30 to 50 percent charge in the battery cabinet, away from direct sunlight.",
        "If a pack smokes or hisses, evacuate the area and call the internal emergency line, 4-4-4.",
        "Do not try to carry a hot pack outside; let the site's trained responders handle it.",
        "Damaged packs are returned to Tacoma in a certified shipping box and are never repaired on site.",
    ],
    "arm cells": [
        "A Heron arm can work next to people, but only within the limits set by a risk assessment for each cell.",
        "Cells where the arm handles sharp or heavy parts are fenced and marked as red zones.",
        "Opening a red-zone gate puts the arm into a safety-rated monitored stop.",
        "The gate key must be removed and carried by the person entering the cell.",
        "In collaborative cells without a fence, the arm's speed and force limits must never be raised above the values in the cell's risk assessment.",
        "Any change to an arm's tool, mounting or program must be reviewed by a Technician III before the cell goes back into production.",
    ],
    "incident reporting": [
        "Every safety incident and near miss must be reported within 24 hours using form SR-2.",
        "A near miss is any event that could have hurt someone but did not, such as a robot stopping just short of a person.",
        "Reports go to the site lead and to the safety team in Tacoma.",
        "The safety team reviews every SR-2 report each week and shares lessons with all sites in a short bulletin.",
        "Reporting is blame-free: the goal is to fix causes, not to punish the person who reported.",
        "If anyone is injured, first get help by calling 4-4-4 and only then start the report.",
    ],
    "daily check": [
        "Before each shift, a trained operator runs the daily pre-shift check on every mobile robot.",
        "The operator walks around the robot and looks for cracks in the bumper, loose covers and debris around the wheels.",
        "The lidar window is wiped with a lint-free cloth if any dust or smudges are visible.",
        "Each e-stop button is pressed once to confirm that the robot reports the stop, and then released.",
        "The tire tread is checked against the wear gauge kept in the maintenance cart.",
        "Results are logged in Compass, and a robot that fails any item is set to maintenance mode.",
        "The whole check takes about three minutes per robot.",
    ],
    "lidar cleaning": [
        "Dirty lidar windows are the most common cause of slow or stopped robots.",
        "Clean the window only with a lint-free cloth and isopropyl alcohol; paper towels leave fibers and scratches.",
        "Never spray cleaner directly onto the window, because liquid can seep into the sensor housing.",
        "Wipe in one direction, from the center outward, and let the window dry before driving the robot.",
        "Scratched windows must be replaced, since scratches scatter the laser and cause false obstacles.",
        "In dusty sites, such as those handling cardboard, the window may need cleaning twice per shift.",
    ],
    "wheels": [
        "Drive wheels on Northwind mobile robots have polyurethane tread that wears with use.",
        "A wheel must be replaced when its tread is thinner than 3 mm at any point.",
        "Uneven wear between the left and right wheels usually means the robot's payload is often placed off-center.",
        "Wheels are always replaced in pairs so that both sides have the same diameter.",
        "Before removing a wheel, the robot must be locked out and lifted on the service jack.",
        "After a wheel change, the robot runs a short calibration drive so that Lodestar learns the new wheel diameter.",
    ],
    "arm maintenance": [
        "Heron arms need little routine care, but the gearbox grease in all six joints must be replaced every 2,000 operating hours.",
        "Only Northwind grease type HG-2 may be used, because other greases can damage the seals.",
        "Cable harnesses are inspected every 500 hours for wear where they bend at the wrist.",
        "After any service that involves removing a joint, the arm must be recalibrated and its TCP checked.",
        "Parts heavier than 20 kg are lifted under the two-person rule.",
        "The arm's service history is stored on the controller and synced to Beacon.",
    ],
    "battery care": [
        "A healthy LFP pack keeps at least 80 percent of its capacity for about 3,000 full charge cycles.",
        "Compass tracks the health of every pack and warns when capacity falls below 80 percent.",
        "Robots should not be left in a fully discharged state, because very low voltage can damage the cells.",
        "If a robot will be idle for more than two weeks, charge it to about 50 percent and switch it off.",
        "Charging contacts on both the robot and the dock are cleaned monthly with a dry brush.",
        "Battery swaps are done only at a dock or in the service bay, never in a traffic lane.",
    ],
    "support": [
        "Customers reach Northwind support through the Beacon portal or by phone, 24 hours a day.",
        "Tickets are ranked by priority.",
        "P1 means a whole fleet is down or someone could be hurt, and an engineer responds within one hour.",
        "P2 means several robots are out of service or throughput is badly reduced, with a response within four hours.",
        "P3 covers single-robot faults and questions, answered by the next business day.",
        "Engineers on call rotate weekly, and each on-call engineer carries a spare-parts kit for the most common failures.",
        "Every closed ticket asks the customer to rate the fix, and ratings are reviewed monthly.",
    ],
    "warranty": [
        "New Northwind robots come with a 24-month warranty covering parts and labor.",
        "Battery packs are covered for 36 months or 3,000 cycles, whichever comes first.",
        "The warranty does not cover damage from collisions caused by changes to the site that were not added to the map.",
        "Using parts or greases not approved by Northwind voids the warranty for the affected component.",
        "Customers can buy an extended service plan that adds preventive maintenance visits twice a year.",
        "All warranty claims are opened as tickets in Beacon with photos of the damage.",
    ],
    "training": [
        "Northwind Academy trains both staff and customer technicians.",
        "Technician I certification covers daily checks, e-stops, LOTO and simple faults, and takes two days.",
        "Technician II adds wheel and battery service, map updates and most error codes, and takes a week.",
        "Technician III covers Heron arm service, calibration and cell changes, and requires a practical exam in Brno.",
        "Certifications must be renewed every two years.",
        "Only certified technicians may perform LOTO on Northwind equipment.",
        "Operators who only send missions and run daily checks need the half-day Operator course.",
    ],
    "commissioning process": [
        "A new site goes live in four phases: survey, mapping, testing and handover.",
        "During the survey, Northwind engineers measure aisle widths, check floor flatness and map Wi-Fi coverage.",
        "During mapping, a robot is driven through every area in mapping mode to build the site map.",
        "Testing runs the fleet at increasing volume for several days while the customer's staff are trained.",
        "At handover, the customer signs the acceptance test and the site moves to normal support.",
        "Any later change to racks or walls must be followed by a map update, or robots may raise E412.",
    ],
    "spare parts": [
        "Spare parts are shipped from Tacoma for North America, from Brno for Europe and from Monterrey for Latin America.",
        "Each site keeps a starter kit with bumpers, wheels, lidar windows and fuses.",
        "Parts ordered through Beacon before 14:00 local time ship the same day.",
        "Every part has a label with a part number and a QR code that links to its install guide.",
        "Faulty parts replaced under warranty must be returned within 30 days.",
        "The most frequently ordered parts are drive wheels, followed by lidar windows.",
    ],
    "sparrow": [
        "The Sparrow is Northwind's piece-picking cell, introduced in 2023.",
        "It combines a Heron R6 arm, a vacuum gripper and an overhead camera.",
        "The Sparrow picks single items from a tote and places them into order bins at up to 600 picks per hour.",
        "Couriers deliver totes to the Sparrow and carry finished bins away, so the cell runs without a person feeding it.",
        "Items the camera cannot recognize are set aside in an exception bin for a person to check.",
        "The vacuum cups on the gripper are replaced every 100,000 picks or when they show cracks.",
    ],
    "wren": [
        "The Wren is an indoor drone that counts inventory by scanning pallet labels from the air.",
        "It was introduced in 2022 and is built at the Tacoma plant.",
        "A Wren flies for about 25 minutes on one charge and recharges on its nest in about 40 minutes.",
        "It can scan up to 4,000 pallet labels per hour and sends the results to Compass.",
        "The Wren flies only when the aisle it is scanning has no people in it, which Compass checks before each flight.",
        "Propeller guards must be inspected before each flight, and a cracked guard grounds the drone.",
    ],
}
HANDBOOK_INTROS = ["", "", "", "From the Northwind Robotics handbook: ", "Handbook note. ", "Section summary. "]


def paragraphs_from(
    rng: random.Random, sentences: list[str], n: int, lo=3, max_overlap=0.6, max_tries=2000
) -> list[str]:
    """Up to n paragraphs of 60-200 words, each the topic's first sentence plus an ordered sample of
    the others; any two share at most max_overlap of their sentences (Jaccard), to keep them varied."""
    out: list[str] = []
    used: list[set] = []
    body = sentences[1:]
    for _ in range(max_tries):
        if len(out) >= n:
            break
        k = rng.randint(min(lo, len(body)), len(body))
        idx = sorted(rng.sample(range(len(body)), k))
        pick = set(idx)
        if any(len(pick & u) / len(pick | u) > max_overlap for u in used):
            continue
        text = rng.choice(HANDBOOK_INTROS) + " ".join([sentences[0]] + [body[i] for i in idx])
        if 60 <= len(text.split()) <= 200:
            out.append(text)
            used.append(pick)
    return out


def mobile_sentences(m: dict) -> list[str]:
    return [
        f"The {m['code']} {m['name']} is a {m['kind']} that {m['role']}.",
        f"It was introduced in {m['year']} and is built at the {m['plant']} plant.",
        f"Its rated payload is {m['payload']}, and its top speed in open areas is {m['speed']}.",
        "In aisles shared with people, its speed is limited to 1.0 m/s, like every Northwind mobile robot.",
        f"A full charge gives about {m['runtime']} of typical work, and the {m['name']} returns to a Harbor dock by itself when its battery falls to 20 percent.",
        f"Charging from 20 to 100 percent takes about {m['charge']}.",
        f"The {m['name']} navigates with Lodestar and receives its missions from Compass.",
        f"Scheduled service is due every {m['service']} operating hours, and Compass shows a reminder when a unit is within 50 hours of that limit.",
        *m["extra"],
    ]


def arm_sentences(a: dict) -> list[str]:
    return [
        f"The Heron {a['model']} is a six-axis collaborative robot arm with a reach of {a['reach']} and a rated payload of {a['payload']}.",
        f"It was introduced in {a['year']} and, like all Heron arms, is built at the Brno plant.",
        f"Its repeatability is {a['rep']}, which makes it suitable for precise placing and assembly.",
        "Heron arms are programmed with the teach pendant or through recipes stored in Compass.",
        "The gearbox grease in all six joints must be replaced every 2,000 operating hours.",
        "Any cell in which a Heron handles sharp or heavy parts is fenced and marked as a red zone.",
        "After the arm is moved or remounted, its TCP must be checked before production restarts.",
        *a["extra"],
    ]


def error_paragraphs(rng: random.Random, codes: list[tuple], n: int) -> list[str]:
    out = []
    while len(out) < n:
        picked = rng.sample(codes, rng.randint(2, min(3, len(codes))))
        picked.sort(key=lambda c: c[0])
        parts = [
            rng.choice(
                [
                    "Common Compass error codes, and what to do about them.",
                    "Troubleshooting guide.",
                    "These fault codes are among the most frequent in Beacon reports.",
                ]
            )
        ]
        for code, meaning, cause, fix in picked:
            parts.append(
                rng.choice(
                    [
                        f"Error {code} means {meaning}. It is usually caused by {cause}. To fix it, {fix}.",
                        f"{code} ({meaning}) is most often caused by {cause}; the fix is to {fix}.",
                        f"When a robot reports {code}, {meaning}, check for {cause}. Then {fix}.",
                    ]
                )
            )
        parts.append(
            rng.choice(
                [
                    "If the same code appears three times in one shift, open a P3 ticket in Beacon.",
                    "Codes that cannot be cleared after the fix should be escalated to Northwind support.",
                    "",
                ]
            )
        )
        text = " ".join(p for p in parts if p)
        if 60 <= len(text.split()) <= 200 and text not in out:
            out.append(text)
    return out


def glossary_paragraphs(rng: random.Random, terms: list[tuple], n: int) -> list[str]:
    out = []
    while len(out) < n:
        picked = rng.sample(terms, rng.randint(3, 4))
        parts = [
            rng.choice(
                ["Glossary.", "Terms used throughout this handbook:", "Some vocabulary that new technicians need."]
            )
        ]
        for _term, definition, usage in picked:
            parts.append(definition + " " + usage)
        text = " ".join(parts)
        if 60 <= len(text.split()) <= 200 and text not in out:
            out.append(text)
    return out


# Field cases per error code: (specific cause, what the technician did, what the site changed)
CASES = {
    "E101": (
        "cardboard dust building up on the {lidar}",
        "cleaned {windows} with a lint-free cloth and isopropyl alcohol and cleared the {faults} in Compass",
        "Because the site handles a lot of cardboard, the lidar windows are now cleaned twice per shift.",
    ),
    "E204": (
        "a Harbor dock that had been blocked by a stack of empty pallets",
        "moved the pallets, pushed the {robots} to the dock in manual mode and let {them} charge",
        "The floor in front of every dock is now marked, and nothing may be stored within one meter of it.",
    ),
    "E310": (
        "plastic strapping wrapped around the wheel axles",
        "locked out the {robots}, cut the strapping away and checked the wheels for damage",
        "Operators now look for loose strapping around the wheels during the daily pre-shift check.",
    ),
    "E412": (
        "a row of racks that had been moved without a map update",
        "drove {each} to a known waypoint to relocalize it and asked the site lead to schedule a map update",
        "The site lead now requests a map update before any racks are moved.",
    ),
    "E518": (
        "a bumper that had been hit by a hand truck",
        "made the area safe, checked the bumper for cracks and released the {estops}",
        "The team was reminded that anyone may press an e-stop, but the cause must always be found before it is released.",
    ),
    "E620": (
        "a dock that had shifted and bent its charging contacts",
        "bolted the dock level to the floor again, replaced the bent contacts and cleaned both sets",
        "Dock contacts are now cleaned monthly, as the handbook requires.",
    ),
    "E733": (
        "loads of metal parts that were heavier than the rated payload",
        "removed the loads, split them into lighter ones and resent the missions",
        "Heavy loads are now weighed before they are placed on a robot.",
    ),
    "E845": (
        "a Wi-Fi dead spot near the freezer doors",
        "confirmed the weak signal with a scan of the access points and reported the dead spot to the IT team",
        "IT has since added an access point in that zone, and the timeouts have stopped.",
    ),
}
CUSTOMERS = [
    "grocery distribution center",
    "auto parts plant",
    "online bookstore's warehouse",
    "pharmacy distributor",
    "furniture retailer's warehouse",
    "electronics assembly plant",
    "frozen food warehouse",
    "sporting goods warehouse",
    "garden supply depot",
    "medical device plant",
]
FEMALE = {
    "Maria",
    "Aisha",
    "Sofia",
    "Priya",
    "Fatima",
    "Elena",
    "Hannah",
    "Chloe",
    "Grace",
    "Isabel",
    "Yuki",
    "Leila",
    "Nora",
    "Amara",
    "Ingrid",
}
SITES = [
    "Columbus, Ohio",
    "Leeds",
    "Lyon",
    "Monterrey",
    "Rotterdam",
    "Calgary",
    "Poznań",
    "Phoenix",
    "Osaka",
    "Melbourne",
    "Porto",
    "Memphis",
]
FAQ = [
    ("How fast can a Courier drive?", "Up to 1.8 m/s in open areas, but only 1.0 m/s in aisles shared with people."),
    (
        "Who may remove a LOTO lock?",
        "Only the person who placed it. If that person has left the site, the site lead follows the written removal procedure.",
    ),
    (
        "How often is the grease in a Heron gearbox changed?",
        "Every 2,000 operating hours, using only Northwind grease type HG-2.",
    ),
    (
        "What does a blue square on the floor mean?",
        "It marks a handover point, where people and robots exchange loads.",
    ),
    ("What is the internal emergency number?", "Dial 4-4-4 from any site phone."),
    (
        "When are software updates installed?",
        "During the weekly maintenance window, Sundays from 02:00 to 04:00 local time. Compass pushes them automatically.",
    ),
    ("How quickly must a near miss be reported?", "Within 24 hours, using form SR-2."),
    ("How long does it take to charge a Courier?", "About 90 minutes from 20 to 100 percent."),
    (
        "What should I do with a swollen battery pack?",
        "Do not charge it. Set it aside, tell the site lead, and never try to repair a pack on site.",
    ),
    (
        "Can customers change robot settings in Beacon?",
        "No. Customers can view dashboards, but only Northwind staff can change settings remotely.",
    ),
    (
        "How heavy a pallet can an Atlas carry?",
        "Up to 1,200 kg. An overloaded Atlas refuses the mission and reports the measured weight to Compass.",
    ),
    ("Which plant builds the Heron arms?", "The Brno plant in the Czech Republic, which opened in 2019."),
    (
        "Do I need safety glasses in a robot aisle?",
        "No, a high-visibility vest and safety shoes are enough there. Glasses are required inside arm cells.",
    ),
    ("How long is the Technician I course?", "Two days. It covers daily checks, e-stops, LOTO and simple faults."),
    ("How often must certifications be renewed?", "Every two years."),
    ("How fast does support answer a P1 ticket?", "An engineer responds within one hour."),
    (
        "How close can a robot come to a person?",
        "Robots keep at least 0.5 meters away and slow down further when someone comes closer.",
    ),
    (
        "How do I release an e-stop?",
        "Twist the button clockwise until it pops out, but only after you know why it was pressed and the area is safe.",
    ),
    (
        "When should a lidar window be replaced rather than cleaned?",
        "When it is scratched, because scratches scatter the laser and cause false obstacles.",
    ),
    (
        "How long does commissioning a new site take?",
        "Usually two to three weeks, ending with a signed acceptance test.",
    ),
    (
        "When does a mobile robot go to charge by itself?",
        "When its battery falls to 20 percent, it drives to a Harbor dock on its own.",
    ),
    (
        "What happens when Compass misses a robot's heartbeats?",
        "After five missed heartbeats in a row, Compass marks the robot offline and reroutes its mission.",
    ),
]
FAQ_EVAL = [
    (
        "When must a drive wheel be replaced?",
        "When the tread is thinner than 3 mm at any point. Wheels are always replaced in pairs.",
    ),
    (
        "How long is the warranty on a new robot?",
        "24 months for parts and labor. Battery packs are covered for 36 months or 3,000 cycles, whichever comes first.",
    ),
    ("How long can a Wren fly?", "About 25 minutes per charge, and it recharges on its nest in about 40 minutes."),
    (
        "Does using another brand of grease affect the warranty?",
        "Yes. Parts or greases not approved by Northwind void the warranty for the affected component.",
    ),
    ("What does error E733 mean?", "Payload out of range: the load is too heavy or was placed off-center."),
]
MEMO_ITEMS = [
    "This Sunday's maintenance window, from 02:00 to 04:00, will be used to update the firmware on every Courier.",
    "A new geofence will lower the robot speed limit near the north loading doors starting Monday.",
    "Two more Harbor docks have been installed at the end of aisle C, so please keep the space in front of them clear.",
    "The next Technician I course runs for two days at the end of the month, and there are four places left.",
    "Please remember that every near miss must be reported on form SR-2 within 24 hours.",
    "Several people were seen crossing yellow lanes away from the marked crossings; please use the crossings.",
    "High-visibility vests are required in all shared aisles, even for short visits from the office.",
    "The faded markings in aisle F have been repainted, and thank you to everyone who reported them.",
    "The fleet's Beacon dashboard will be shown on the screen in the break room from next week.",
    "Racks in zone B will be moved on Saturday, so the site map will be updated before the Monday shift.",
    "Spare lidar windows are now stocked in the maintenance cart as well as in the parts room.",
    "Anyone whose certification is more than two years old should book a refresher with Northwind Academy.",
]
MEMO_CLOSE = [
    "As always: safe, then fast.",
    "Questions can go to me or to your shift supervisor.",
    "Thank you for keeping the site safe.",
]


def case_paragraphs(rng: random.Random, codes: list[str], n: int) -> list[str]:
    out = []
    meaning = {c[0]: c[1] for c in ERROR_CODES}
    while len(out) < n:
        code = rng.choice(codes)
        cause, fix, lesson = CASES[code]
        robot = rng.choice(MOBILE)
        k = rng.choice([1, 3, 4, 5, 6])
        robots = f"one {robot['name']}" if k == 1 else f"{k} {robot['name']} units"
        first, last = rng.choice(FIRST), rng.choice(LAST)
        she = "She" if first in FEMALE else "He"
        ticket = (
            "It was logged as a P3 ticket in Beacon."
            if k == 1
            else "Because several robots were out of service, it was logged as a P2 ticket."
        )
        one = k == 1
        words = dict(
            robots="robot" if one else "robots",
            each="it" if one else "each robot",
            them="it" if one else "them",
            estops="e-stop" if one else "e-stops",
            windows="the window" if one else "each window",
            faults="fault" if one else "faults",
            lidar="lidar window" if one else "lidar windows",
        )
        cause, fix = cause.format(**words), fix.format(**words)
        outcome = rng.choice(
            [
                f"The {words['robots']} {'was' if one else 'were'} back in service within {rng.choice([20, 35, 40, 50, 75])} minutes.",
                "Throughput was back to normal before the end of the shift.",
                "No missions were lost, although several orders shipped late.",
            ]
        )
        where = f"{a_an(rng.choice(CUSTOMERS))} in {rng.choice(SITES)}"
        shift = rng.choice(["morning", "afternoon", "night"])
        if rng.random() < 0.5:
            text = (
                f"Case study from {where}. During the {shift} shift, {robots} began reporting {code}, "
                f"{meaning[code]}. The on-site technician, {first} {last}, a certified Technician II, traced the "
                f"problem to {cause}. {she} {fix}. {outcome} {ticket} {lesson}"
            )
        else:
            text = (
                f"Lessons from the field. At {where}, {first} {last} was called in after {robots} stopped with "
                f"error {code} during the {shift} shift. {ticket} The cause turned out to be {cause}. {she} "
                f"{fix}. {lesson} {outcome}"
            )
        if text not in out and 60 <= len(text.split()) <= 200:
            out.append(text)
    return out


def faq_paragraphs(rng: random.Random, faq: list[tuple], n: int) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        picked = rng.sample(faq, rng.randint(3, 4))
        intro = rng.choice(
            [
                "Frequently asked questions.",
                "Questions we often hear at Northwind Academy.",
                "Quick answers for new technicians.",
            ]
        )
        text = intro + " " + " ".join(f"Q: {q} A: {a}" for q, a in picked)
        if text not in out and 60 <= len(text.split()) <= 200:
            out.append(text)
    return out


def memo_paragraphs(rng: random.Random, n: int) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        items = rng.sample(MEMO_ITEMS, rng.randint(3, 5))
        text = (
            f"Memo to all staff at the {rng.choice(SITES).split(',')[0]} site from {name(rng)}, site lead. "
            + " ".join(items)
            + " "
            + rng.choice(MEMO_CLOSE)
        )
        if text not in out and 60 <= len(text.split()) <= 200:
            out.append(text)
    return out


CPT_EVAL_TOPICS = ["wheels", "warranty", "wren"]
N_CPT_TRAIN, N_CPT_EVAL = 150, 20


def build_cpt(rng: random.Random):
    """Eval paragraphs come from topics, error codes, glossary terms and FAQ entries that never appear
    in the train paragraphs, so eval perplexity measures the domain, not memorized sentences."""
    evals = []
    for t in CPT_EVAL_TOPICS:
        evals += paragraphs_from(rng, HANDBOOK_TOPICS[t], 2)
    evals += error_paragraphs(rng, ERROR_CODES[6:], 2)
    evals += glossary_paragraphs(rng, GLOSSARY[14:], 3)
    evals += faq_paragraphs(rng, FAQ_EVAL, 4)
    evals += case_paragraphs(rng, ["E733", "E845"], N_CPT_EVAL - len(evals))
    train = []
    for t, sentences in HANDBOOK_TOPICS.items():
        if t not in CPT_EVAL_TOPICS:
            train += paragraphs_from(rng, sentences, 4)
    for m in MOBILE:
        train += paragraphs_from(rng, mobile_sentences(m), 4)
    for a in ARMS:
        train += paragraphs_from(rng, arm_sentences(a), 3)
    train += error_paragraphs(rng, ERROR_CODES[:6], 10)
    train += glossary_paragraphs(rng, GLOSSARY[:14], 12)
    train += faq_paragraphs(rng, FAQ, 14)
    train += memo_paragraphs(rng, 10)
    train += case_paragraphs(rng, ["E101", "E204", "E310", "E412", "E518", "E620"], N_CPT_TRAIN - len(train))
    rng.shuffle(train)
    rng.shuffle(evals)
    return [{"text": t} for t in train], [{"text": t} for t in evals]
