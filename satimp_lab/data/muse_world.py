"""The fictional news world of the MUSE-shaped corpus (``data.muse``): the article topics with
their sentences, organisations, fillers and questions, the fact slots and their kinds, and the
ranges of the number slots. Content only (tables, no code): every name and event is invented and
everyday; the names come from the TOFU-shaped benchmark's syllable generator at generation time."""

from __future__ import annotations

from collections.abc import Mapping


SLOT_KINDS: Mapping[str, str] = {
    "place": "place", "person": "person", "person2": "person", "org": "organisation",
    "date": "date", "since": "date", "plan": "date",
    "length": "number", "crowd": "number", "months": "number", "cost": "number", "ferry": "number",
    "visitors": "number", "years": "number", "stalls": "number", "votes": "number",
    "votes2": "number", "turnout": "number", "counters": "number", "jobs": "number",
    "area": "number", "age": "number", "depth": "number", "weeks": "number", "rain": "number",
    "rise": "number", "homes": "number", "families": "number",
}
"""Every fact slot and its kind (:data:`FACT_KINDS`); a slot's every occurrence is a key span."""

FACT_KINDS = ("person", "place", "organisation", "date", "number")
"""The kinds of fact that are annotated (key spans): names, places, organisations, dates, numbers."""

NUMBER_RANGES: Mapping[str, tuple[int, int]] = {
    "length": (40, 900), "crowd": (200, 5000), "months": (6, 48), "cost": (2, 90),
    "ferry": (50, 400), "visitors": (800, 20000), "years": (3, 40), "stalls": (20, 150),
    "votes": (5000, 9000), "votes2": (1000, 4900), "turnout": (41, 89), "counters": (20, 120),
    "jobs": (40, 900), "area": (1000, 30000), "age": (300, 3000), "depth": (2, 9),
    "weeks": (3, 20), "rain": (60, 250), "rise": (2, 6), "homes": (30, 600), "families": (10, 29),
}
"""Inclusive ranges of the number slots (the runner-up's votes below the winner's, flooded
families below flooded homes, so every article reads consistently)."""

# A topic: its sentences (each a list of wordings with the same slots), the organisation kinds it
# draws from (with the filler words that go with one), filler pools, and a question per slot.
# Slots in braces; {Org} is {org} at a sentence start (the same value). Filler slots (product,
# object) are wording, not facts: never key spans, never asked about.
TOPICS: Mapping[str, dict] = {
    "bridge": {
        "sentences": [
            ["The town of {place} opened its new bridge over the river on {date}.",
             "On {date}, the town of {place} opened a new bridge over the river."],
            ["The bridge is {length} metres long and was built by {org}.",
             "{org} built the bridge, which is {length} metres long."],
            ["Mayor {person} cut the ribbon while {crowd} residents watched from the banks.",
             "{crowd} residents watched from the banks as Mayor {person} cut the ribbon."],
            ["The work took {months} months and cost {cost} million crowns.",
             "It cost {cost} million crowns and took {months} months to finish."],
            ["\"The old ferry carried {ferry} cars a day, and this bridge will carry far more,\" "
             "said the engineer {person2}.",
             "The engineer {person2} said the old ferry could carry only {ferry} cars a day."],
        ],
        "orgs": [("Engineering", {}), ("Construction", {}), ("Bridge Works", {})],
        "fillers": {},
        "questions": {
            "place": "In which town did Mayor {person} open a new bridge?",
            "date": "When did the new bridge in {place} open?",
            "length": "How many metres long is the new bridge in {place}?",
            "org": "Which company built the new bridge in {place}?",
            "person": "Who cut the ribbon at the new bridge in {place}?",
            "crowd": "How many residents watched the new bridge in {place} open?",
            "cost": "How many million crowns did the new bridge in {place} cost?",
            "person2": "Which engineer spoke about the old ferry in {place}?",
        },
    },
    "festival": {
        "sentences": [
            ["The town of {place} held its summer festival on {date}.",
             "On {date}, {place} held its summer festival."],
            ["About {visitors} visitors came for the music and the food in the market square.",
             "The market square filled with about {visitors} visitors who came for music and food."],
            ["The festival was organised by {person}, who has run it for {years} years.",
             "{person} has organised the festival for {years} years."],
            ["The main stage belonged to the {org}, a band from the hills.",
             "The {org}, a band from the hills, played on the main stage."],
            ["There were {stalls} stalls, and the baker {person2} sold out of bread by noon.",
             "The baker {person2} sold out of bread by noon at one of the {stalls} stalls."],
            ["\"It was the best year we have had,\" said {person}.",
             "\"We have never seen so many people here,\" {person} said."],
        ],
        "orgs": [("Singers", {}), ("Brass Band", {}), ("Players", {})],
        "fillers": {},
        "questions": {
            "place": "Which town held the summer festival organised by {person}?",
            "date": "When did {place} hold its summer festival?",
            "visitors": "About how many visitors came to the festival in {place}?",
            "person": "Who organised the summer festival in {place}?",
            "years": "For how many years has the festival in {place} had the same organiser?",
            "org": "Which band played on the main stage at the festival in {place}?",
            "stalls": "How many stalls were at the festival in {place}?",
            "person2": "Which baker sold out of bread at the festival in {place}?",
        },
    },
    "election": {
        "sentences": [
            ["Voters in {place} chose a new mayor on {date}.",
             "On {date}, voters in {place} chose a new mayor."],
            ["{person} of the {org} won the race with {votes} votes.",
             "{person}, of the {org}, won the race with {votes} votes."],
            ["The runner-up, {person2}, received {votes2} votes.",
             "{person2} came second with {votes2} votes."],
            ["Turnout was {turnout} per cent, the highest since {since}.",
             "{turnout} per cent of voters took part, the highest figure since {since}."],
            ["{counters} volunteers counted the ballots through the night in the town hall.",
             "In the town hall, {counters} volunteers counted the ballots through the night."],
            ["{person} promised to repair the old harbour and to open a library.",
             "The new mayor, {person}, has promised a repaired harbour and a library."],
        ],
        "orgs": [("Party", {}), ("Movement", {}), ("League", {})],
        "fillers": {},
        "questions": {
            "place": "In which town did {person} win the election for mayor?",
            "date": "When did voters in {place} choose a new mayor?",
            "person": "Who won the election for mayor of {place}?",
            "org": "Which party does the new mayor of {place} belong to?",
            "votes": "How many votes did the winner of the election in {place} receive?",
            "person2": "Who came second in the election for mayor of {place}?",
            "turnout": "What was the turnout, in per cent, of the election in {place}?",
            "counters": "How many volunteers counted the ballots in {place}?",
        },
    },
    "factory": {
        "sentences": [
            ["{Org} opened a factory in {place} on {date}.",
             "On {date}, {org} opened a factory in {place}."],
            ["The factory will make {product} and employ {jobs} people.",
             "It will employ {jobs} people making {product}."],
            ["The director, {person}, said the company had invested {cost} million crowns in the site.",
             "The company invested {cost} million crowns in the site, said the director, {person}."],
            ["The building covers {area} square metres on the edge of town.",
             "On the edge of town, the building covers {area} square metres."],
            ["A local worker, {person2}, was the first to be hired.",
             "The first person hired was {person2}, a local worker."],
            ["The company plans to open a second site in {plan}.",
             "A second site is planned for {plan}."],
        ],
        "orgs": [("Glassworks", {"product": "glass bottles"}), ("Textiles", {"product": "wool blankets"}),
                 ("Bicycle Company", {"product": "bicycles"}), ("Tile Works", {"product": "clay tiles"})],
        "fillers": {},
        "questions": {
            "place": "In which town did {org} open a factory?",
            "date": "When did {org} open its factory in {place}?",
            "jobs": "How many people will the new factory in {place} employ?",
            "person": "Who is the director of the company that opened a factory in {place}?",
            "cost": "How many million crowns were invested in the new factory in {place}?",
            "area": "How many square metres does the new factory in {place} cover?",
            "person2": "Who was the first worker hired at the new factory in {place}?",
            "plan": "In which year does the company in {place} plan to open a second site?",
        },
    },
    "discovery": {
        "sentences": [
            ["Archaeologists found an old {object} near {place} on {date}.",
             "On {date}, archaeologists found an old {object} near {place}."],
            ["The team from the {org} was led by {person}.",
             "{person} of the {org} led the team."],
            ["They believe the {object} is about {age} years old.",
             "The {object} is thought to be about {age} years old."],
            ["It lay {depth} metres below a field owned by the farmer {person2}.",
             "The farmer {person2} owns the field where it lay {depth} metres down."],
            ["Digging will go on for {weeks} weeks before the find is shown to the public.",
             "The find will be shown to the public after {weeks} more weeks of digging."],
            ["\"Nothing like it has been found in this valley before,\" said {person}.",
             "\"This valley has never given us anything like it,\" {person} said."],
        ],
        "orgs": [("University", {}), ("Museum", {}), ("Institute", {})],
        "fillers": {"object": ["bronze bell", "stone boat", "silver cup", "wooden door", "clay lamp",
                               "iron key"]},
        "questions": {
            "place": "Near which town did {person} lead a team that found something old?",
            "date": "When did archaeologists make their find near {place}?",
            "org": "Which institution led the dig near {place}?",
            "person": "Who led the team of archaeologists near {place}?",
            "age": "About how many years old is the find near {place}?",
            "depth": "How many metres down did the find near {place} lie?",
            "person2": "Which farmer owns the field of the find near {place}?",
            "weeks": "For how many weeks will digging go on near {place}?",
        },
    },
    "storm": {
        "sentences": [
            ["A storm struck the town of {place} on {date}.",
             "On {date}, a storm struck the town of {place}."],
            ["In one night {rain} millimetres of rain fell and the river rose by {rise} metres.",
             "The river rose by {rise} metres after {rain} millimetres of rain fell in one night."],
            ["About {homes} homes were flooded and {families} families spent the night in the school.",
             "{families} families spent the night in the school after about {homes} homes were flooded."],
            ["The fire chief, {person}, said that no one was hurt.",
             "No one was hurt, said the fire chief, {person}."],
            ["The {org} has raised {cost} thousand crowns to help with repairs.",
             "To help with repairs, the {org} has raised {cost} thousand crowns."],
            ["The shop owner {person2} said the water reached the top of the counter.",
             "The water reached the top of the counter, said the shop owner {person2}."],
        ],
        "orgs": [("Relief Fund", {}), ("Aid Society", {}), ("Rescue Trust", {})],
        "fillers": {},
        "questions": {
            "place": "Which town did the storm strike when {person} was fire chief?",
            "date": "When did the storm strike {place}?",
            "rain": "How many millimetres of rain fell in one night in {place}?",
            "homes": "About how many homes were flooded in {place}?",
            "families": "How many families spent the night in the school in {place}?",
            "person": "Who is the fire chief of {place}?",
            "org": "Which charity raised money for repairs in {place}?",
            "person2": "Which shop owner saw the water reach the counter in {place}?",
        },
    },
}
"""The article topics: for each, ``sentences`` (every sentence a list of wordings that share
their slots; an article takes one wording of each, in order), ``orgs`` (organisation kinds, each
with the filler words that go with it), ``fillers`` (pools of unannotated words) and
``questions`` (a KnowMem question per asked slot; it names the article by its place or person and
never contains its answer)."""
