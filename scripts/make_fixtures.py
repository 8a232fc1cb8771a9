"""Generate the fixture samples that lorakit's offline and tiny profiles train and evaluate on.

The samples mimic the schema, label names, splits and rough shape of IMDB (long movie reviews,
two balanced classes) and dair-ai/emotion (short lowercase first-person sentences, six
imbalanced classes). Every text is composed here from templates and phrase banks written for
this project, with a fixed-seed ``random.Random``; nothing is copied from the real datasets.

About a tenth of each split is deliberately mixed or ambiguous (a review that praises the acting
but is negative overall, "i feel oddly calm even though everyone around me seems furious"),
and both tasks share neutral filler vocabulary, so that a model learns the task but not
perfectly and the error-analysis notebook has something to show.

Run from the repository root:

    .venv/bin/python scripts/make_fixtures.py

It rewrites ``lorakit/fixtures/`` (JSON lines per split plus a README with the counts) and prints
the counts. The output is byte-for-byte the same on every run.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

FIXTURES_DIR = Path(__file__).resolve().parents[1] / "lorakit" / "fixtures"

IMDB_SEED = 1701
EMOTION_SEED = 1702
MIXED_SHARE = 0.10
MIN_CLASS_COUNT = 4

IMDB_LABELS = ("neg", "pos")
IMDB_SPLIT_SIZES = {"train": 320, "test": 160}

EMOTION_LABELS = ("sadness", "joy", "love", "anger", "fear", "surprise")
EMOTION_SPLIT_SIZES = {"train": 480, "validation": 120, "test": 120}
# Approximate class shares of dair-ai/emotion, in label order.
EMOTION_SHARES = (0.29, 0.335, 0.08, 0.135, 0.12, 0.036)

NEG, POS = 0, 1
Row = dict[str, object]
TextMaker = Callable[[random.Random, int, bool], str]

# --------------------------------------------------------------------------------------------
# IMDB-like reviews: phrase banks
# --------------------------------------------------------------------------------------------

TITLE_FIRST = (
    "The Silent", "The Last", "Midnight", "Broken", "Paper", "The Glass", "Northern", "Hollow",
    "The Crimson", "Distant", "Quiet", "The Iron", "Sleeping", "Salt", "The Lost", "Winter",
)
TITLE_SECOND = (
    "Harbor", "Orchard", "Lantern", "Frontier", "Signal", "Garden", "Tide", "Letters",
    "Engine", "Summer", "Horizon", "Choir", "Canyon", "Witness", "Bridge", "Carnival",
)
FIRST_NAMES = (
    "Mara", "Elias", "Tomas", "Ines", "Jonah", "Priya", "Dana", "Felix", "Rosa", "Owen",
    "Lena", "Marcus", "Hana", "Victor", "Nadia", "Caleb", "Greta", "Idris", "Sofia", "Bram",
)
SURNAMES = (
    "Voss", "Calloway", "Brandt", "Okafor", "Lindqvist", "Moreau", "Reyes", "Hale", "Petrov",
    "Ashby", "Quinn", "Navarro", "Thorne", "Abara", "Keller", "Whitlock",
)
GENRES = (
    "thriller", "romantic comedy", "war drama", "science fiction film", "horror movie",
    "family drama", "western", "heist movie", "coming-of-age story", "musical", "crime drama",
    "fantasy adventure", "mystery", "sports drama", "period piece", "road movie",
)
JOBS = (
    "retired detective", "young nurse", "struggling painter", "ship's mechanic",
    "small-town teacher", "night-shift baker", "disgraced surgeon", "radio host",
    "lighthouse keeper", "bank clerk", "former boxer", "violin student", "court reporter",
    "tired taxi driver",
)
SETTINGS = (
    "a fishing village in the far north", "a mining town in the mountains",
    "a crowded port city", "a space station orbiting a dying star",
    "a boarding school in the countryside", "a grand hotel that is about to close",
    "a small island off the coast", "a desert town in the middle of a drought",
    "a city under curfew", "a travelling circus", "a hospital during a long strike",
)
PLOT_TURNS = (
    "finds a stranger's diary hidden under the floorboards",
    "gets a phone call from a brother thought dead for years",
    "witnesses a crime that nobody else believes happened",
    "inherits a crumbling house full of secrets",
    "agrees to help a runaway teenager cross the border",
    "has one week to pay back a dangerous debt",
    "is asked to take on one final job",
    "starts receiving letters that seem to predict the future",
)
GOALS = (
    "tries to bring a scattered family back together",
    "wants to win back an old friend",
    "has to cross the country before the first snow",
    "tries to solve a murder that the police have given up on",
    "hopes to save the family business from ruin",
    "sets out to find the father who walked away decades ago",
    "trains for a competition that nobody expects them to win",
)
THEMES = (
    "grief and forgiveness", "ambition and what it costs", "loyalty between old friends",
    "the fear of growing old", "class and money", "memory and guilt",
    "faith and doubt", "the gap between parents and children",
)
OCCASIONS = (
    "last night", "on a long flight", "at a small film festival",
    "on television late one night", "with my family over the holidays",
    "on a friend's recommendation", "at the cinema on opening weekend",
    "in an almost empty theater on a Tuesday",
)
RELATIVES = ("brother", "sister", "father", "mother", "roommate", "partner", "grandfather")

OPENINGS = (
    "I watched {title} {occasion}.",
    "{title} is a {genre} from {year} directed by {director}.",
    "I had heard a lot about {title} before I finally sat down to watch it.",
    "{title} came out in {year}, and I only caught up with it recently.",
    "Going into {title}, all I knew was that it was a {genre}.",
    "I picked {title} almost at random while looking for a {genre}.",
    "{director} has made a few films before, but {title} is the first one I have seen.",
)
PLOT_SENTENCES = (
    "{char}, a {job} in {setting}, {plot_turn}.",
    "The story follows {char}, a {job} who {goal}.",
    "Most of the film takes place in {setting}.",
    "Along the way {char} meets {char2}, a {job2} with a past of their own.",
    "Without giving too much away, the second half is about {theme}.",
    "The first act sets up {char} and {char2} as rivals, which changes slowly.",
    "{char2} is the only person {char} trusts, and the film keeps testing that trust.",
    "There is a long flashback to {char}'s childhood in {setting}.",
    "At its heart, {title} is a story about {theme}.",
)
NEUTRAL_SENTENCES = (
    "I watched it on a rainy Sunday afternoon with my {relative}.",
    "The film runs a little over two hours.",
    "I saw it at a late screening with maybe ten other people in the room.",
    "It was recommended to me by a friend from work.",
    "I read the novel years ago but remembered very little of it.",
    "It is loosely based on a true story.",
    "The trailer gives away more than it should.",
    "This was my second time watching it.",
    "It was shot on location, mostly in winter.",
    "I went in with no expectations at all.",
    "There is a short scene after the credits.",
    "The cast is mostly unknown actors, apart from {actor}.",
    "I rented it because the cover looked interesting.",
    "My {relative} fell asleep halfway through, which tells you nothing either way.",
    "It opened in only a handful of theaters.",
)
# The i-th sentence of each list judges the same aspect, so a review never says both.
OPINIONS = {
    POS: (
        "{actor} gives a warm, layered performance as {char}.",
        "The acting is superb across the board, and even the smallest roles feel lived in.",
        "{actor} is wonderful here, funny one minute and heartbreaking the next.",
        "Every performance feels honest and natural.",
        "{actor2} steals every scene as {char2}.",
        "The script is sharp and clever, and it trusts the audience.",
        "The writing is full of small details that pay off later.",
        "The dialogue sounds like real people talking.",
        "The plot twists are earned rather than cheap.",
        "{director} directs with a confident, steady hand.",
        "Every scene has a purpose, and nothing feels wasted.",
        "The score is beautiful and lingers long after the film ends.",
        "The soundtrack fits every mood perfectly.",
        "The cinematography is gorgeous, with frames composed like paintings.",
        "The pacing is tight, and two hours simply fly by.",
        "It never drags, not even for a minute.",
        "The ending is moving and perfectly judged.",
        "The final scene left me in tears, in the best possible way.",
        "{char} is one of the most memorable characters I have met in years.",
        "The characters feel like real people with real flaws.",
        "It made me laugh out loud more than once.",
        "It is genuinely touching without ever becoming sentimental.",
        "The chemistry between {actor} and {actor2} is wonderful to watch.",
        "The suspense builds so well that I forgot to breathe during the last act.",
    ),
    NEG: (
        "{actor} looks bored in nearly every scene as {char}.",
        "The acting is wooden, with lines delivered as if read from a cue card.",
        "{actor} overacts so badly that I laughed during the serious moments.",
        "None of the performances feel believable.",
        "{actor2} is completely wasted in a thankless role as {char2}.",
        "The script is lazy and predictable from the very first scene.",
        "The dialogue is clumsy and full of tired clichés.",
        "The plot has holes you could drive a truck through.",
        "Every twist can be seen coming a mile away.",
        "{director} seems to have no idea what kind of film this is supposed to be.",
        "The tone lurches between comedy and tragedy without any control.",
        "The music is loud and intrusive, telling you what to feel in every scene.",
        "The soundtrack is generic and instantly forgettable.",
        "The cinematography is flat and murky, and half the scenes are too dark to follow.",
        "The pacing is painfully slow, and the middle hour drags on forever.",
        "It is at least forty minutes too long.",
        "The ending is rushed and makes no sense at all.",
        "The final twist ruins everything that came before it.",
        "{char} is so thin and unlikable that I stopped caring within twenty minutes.",
        "The characters are flat stereotypes with no inner life.",
        "The jokes fall flat, one after another.",
        "It tries very hard to be moving but feels completely hollow.",
        "There is zero chemistry between {actor} and {actor2}.",
        "The suspense never builds, because nothing is ever really at stake.",
    ),
}
CRAFT_ASPECTS = (
    "the editing", "the set design", "the costume work", "the sound design", "the lighting",
    "the casting", "the camera work", "the production design", "the fight choreography",
    "the makeup", "the effects work", "the opening sequence",
)
CRAFT_ADJECTIVES = {
    POS: (
        "excellent", "stunning", "inventive", "first-rate", "meticulous", "gorgeous",
        "superb", "thoughtful", "impressive", "delightful", "elegant", "striking",
    ),
    NEG: (
        "sloppy", "dreadful", "amateurish", "clumsy", "lifeless", "awful", "embarrassing",
        "careless", "dull", "cheap", "ugly", "distracting",
    ),
}
CRAFT_TAILS = (
    "", ", and it shows in every scene", ", which surprised me", " from start to finish",
    " for a film of this size", ", as far as I could tell",
)
VERDICTS = {
    POS: (
        "Highly recommended.", "One of the best films I have seen this year.",
        "I will definitely watch it again.", "A small gem that deserves a much bigger audience.",
        "Go and see it, you will not regret it.", "An absolute delight from start to finish.",
        "I loved it.", "A beautiful, brave film.", "Easily worth your time.",
    ),
    NEG: (
        "Avoid this one.", "One of the worst films I have seen this year.",
        "A complete waste of two hours.", "I cannot recommend it to anyone.", "Save your money.",
        "I wanted to walk out after an hour.", "A tedious, forgettable mess.",
        "What a disappointment.", "Not worth your time.",
    ),
}
# Verdicts that go against most of what the body of a mixed review said.
MIXED_VERDICTS = {
    POS: (
        "For all its flaws, I enjoyed it more than most films this year.",
        "It is rough around the edges, but I loved it anyway.",
        "Despite everything I just said, I would happily watch it again.",
        "Flawed, yes, but its heart is in the right place, and that won me over.",
        "Somehow it all works in the end, and I was smiling when the lights came up.",
    ),
    NEG: (
        "Good performances cannot save a hollow film, though.",
        "Still, pretty pictures are not enough, and I was bored by the end.",
        "In the end the good parts add up to very little.",
        "Despite the talent involved, I cannot recommend it.",
        "Sadly, the whole is much less than the sum of its parts.",
    ),
}
# Rating ranges by (label, is_mixed): mixed reviews get lukewarm ratings.
RATING_RANGES = {
    (POS, False): (7, 10), (NEG, False): (1, 4), (POS, True): (6, 7), (NEG, True): (4, 5),
}
RATING_FORMATS = ("{n}/10.", "Rating: {n}/10.", "I give it {n} out of 10.")


# --------------------------------------------------------------------------------------------
# Emotion-like sentences: phrase banks (lowercase, no apostrophes, like the real dataset)
# --------------------------------------------------------------------------------------------

EMOTION_WORDS = (
    (  # sadness
        "sad", "lonely", "hopeless", "miserable", "gloomy", "heartbroken", "empty", "defeated",
        "homesick", "crushed", "discouraged", "unhappy", "worthless", "disheartened", "gutted",
        "numb", "ashamed", "drained", "low", "down",
    ),
    (  # joy
        "happy", "cheerful", "content", "glad", "relaxed", "hopeful", "proud", "grateful",
        "delighted", "peaceful", "joyful", "excited", "satisfied", "thrilled", "energetic",
        "confident", "calm", "optimistic", "carefree", "lucky",
    ),
    (  # love
        "loving", "affectionate", "tender", "caring", "devoted", "romantic", "passionate",
        "sweet", "fond", "adored", "cherished", "smitten", "longing", "sentimental",
        "supportive", "compassionate", "warmhearted", "nostalgic",
    ),
    (  # anger
        "angry", "furious", "irritated", "annoyed", "resentful", "bitter", "frustrated",
        "outraged", "grumpy", "cranky", "offended", "fed up", "livid", "hostile", "insulted",
        "jealous", "spiteful", "irritable",
    ),
    (  # fear
        "scared", "afraid", "anxious", "nervous", "terrified", "frightened", "uneasy", "worried",
        "shaky", "panicky", "jumpy", "insecure", "on edge", "paranoid", "tense", "apprehensive",
        "restless", "vulnerable",
    ),
    (  # surprise
        "surprised", "amazed", "shocked", "stunned", "astonished", "startled", "speechless",
        "dazed", "curious", "impressed", "baffled", "taken aback", "blown away",
        "caught off guard", "dumbfounded", "overwhelmed",
    ),
)
EMOTION_CONTEXTS = (
    (  # sadness
        "since my grandmother passed away", "after the breakup last month",
        "because nobody called on my birthday", "when i look at old photos of us",
        "now that my best friend moved away", "after failing the driving test again",
        "every time i come home to an empty apartment", "since i lost my job",
        "when i remember how things used to be", "because i missed the funeral",
        "after my dog died", "knowing i let everyone down",
    ),
    (  # joy
        "after finishing my first half marathon", "because the sun finally came out",
        "now that the exams are over", "since i started my new job",
        "after a long weekend at the beach", "because my sister had her baby",
        "when i hear my favourite song on the radio", "after getting the acceptance letter",
        "now that my garden is blooming", "because we finally paid off the loan",
        "after a good night of sleep", "when my friends throw me a party",
    ),
    (  # love
        "when he holds my hand", "every time she laughs at my bad jokes",
        "when my partner makes me breakfast", "when i watch my kids sleep",
        "thinking about our first date", "when he leaves me little notes",
        "every time my grandma hugs me", "when we dance in the kitchen",
        "whenever she calls just to say goodnight", "when i read his old letters",
        "toward the people who stood by me", "about the man i am going to marry",
    ),
    (  # anger
        "when people cut in line", "because my landlord ignored me again",
        "after my coworker took credit for my work", "when someone lies to my face",
        "because the bus left without me", "after waiting three hours at the clinic",
        "when my brother borrows my things without asking", "because they cancelled my flight",
        "when the neighbours play loud music at night",
        "after being blamed for something i didnt do",
        "when my boss yells in front of everyone", "because the refund never came",
    ),
    (  # fear
        "before the exam results come out", "walking home alone in the dark",
        "about the surgery next week", "when i hear footsteps behind me",
        "about losing my job", "before my first day at the new school",
        "whenever the plane hits turbulence", "about the test results from the doctor",
        "when the phone rings late at night", "about speaking in front of the whole class",
        "since the break in next door", "about moving to a city where i know nobody",
    ),
    (  # surprise
        "when the letter arrived out of nowhere", "that my old teacher remembered my name",
        "when my friends showed up at my door", "at how quickly everything changed",
        "that the package was actually for me", "when i found money in my old coat",
        "that he actually said yes", "at how much the town has grown",
        "when i saw my test score", "that my parents planned a trip without telling me",
        "at the ending of that book", "to see snow in april",
    ),
)
TOPICS = (
    "the new apartment", "my exams", "the wedding", "the job interview", "my garden",
    "the holidays", "my thesis", "the trip", "the move", "my old car", "the meeting tomorrow",
    "the weekend", "my birthday", "the project at work", "this semester", "the family dinner",
    "the news", "my new haircut", "the school play", "the group chat", "my blog",
    "the football season", "my sourdough starter", "the renovation", "the camping trip",
    "my dentist appointment", "the science fair", "my volunteer shift", "the road trip",
    "the graduation party", "my night classes", "the book club",
)
PEOPLE = (
    "my sister", "my boss", "my roommate", "my best friend", "my dad", "my mom",
    "my neighbour", "my coach", "my teacher", "my husband", "my girlfriend", "my cousin",
    "my grandmother", "my therapist", "an old classmate", "my coworker", "my son",
    "my uncle", "my flatmate", "my piano teacher",
)
TIMES = (
    "this morning", "tonight", "right now", "today", "all week", "this weekend", "lately",
    "since monday", "on the bus home", "after lunch", "at work today", "in class",
    "this evening", "for a few days now",
)
NEUTRAL_CONTEXTS = (
    "about {topic}", "{time}", "after talking to {person}", "when {person} calls me",
    "when {person} talks about {topic}", "about {topic} {time}",
    "whenever i think about {topic}", "when {person} sends me a message",
    "after dinner with {person}", "while cleaning the kitchen {time}",
    "when {person} asks about {topic}", "writing this",
)
TAILS = (
    "and i dont know what to do about it", "to be honest", "if that makes sense",
    "for the first time in a while", "and i cant really explain it", "more than i expected",
    "and i think everyone can tell", "so i am writing it down", "which is new for me",
    "and that is okay", "and it has been like this all day",
)
FEEL_PREFIXES = (
    "i feel", "i feel", "i feel", "i am", "im", "i have been feeling", "i was feeling",
    "i still feel", "i am feeling", "i guess i feel", "i felt", "i keep feeling",
    "i started feeling", "i honestly feel", "i just feel",
)
INTENSIFIERS = ("", "", "", "so ", "really ", "a little ", "kind of ", "very ", "pretty ")
# {context} is class-indicative half of the time, {cue} always, {neutral} never.
PLAIN_TEMPLATES = (
    "{prefix} {intensifier}{word} {context}",
    "{prefix} {intensifier}{word} {context} {tail}",
    "{prefix} {word} and {word2} {context}",
    "{prefix} {intensifier}{word} {neutral} {tail}",
    "i dont know why but {prefix} {intensifier}{word} {context}",
    "{time} {prefix} {intensifier}{word} {cue}",
    "i woke up feeling {intensifier}{word} {context}",
)
# {word} is the labelled emotion, {other} a word from another class.
MIXED_TEMPLATES = (
    "i thought i would feel {other} {neutral} but honestly i just feel {word}",
    "i feel oddly {word} even though everyone around me seems {other}",
    "part of me is {other} but mostly i feel {word} {context}",
    "i feel {other} and {word} at the same time {neutral}",
    "i am supposed to feel {other} {other_context} but i only feel {word}",
    "i feel strangely {word} {other_context}",
    "i was {other} at first but now im {word} {neutral}",
)


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def class_counts(size: int, shares: tuple[float, ...]) -> list[int]:
    """Split ``size`` rows over classes in proportion to ``shares`` (largest remainder).

    Every class gets at least ``MIN_CLASS_COUNT`` rows.
    """
    total = sum(shares)
    exact = [size * share / total for share in shares]
    counts = [int(value) for value in exact]
    by_remainder = sorted(range(len(shares)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: size - sum(counts)]:
        counts[i] += 1
    if min(counts) < MIN_CLASS_COUNT:
        raise ValueError(f"split of {size} rows leaves a class below {MIN_CLASS_COUNT}: {counts}")
    return counts


def label_plan(rng: random.Random, counts: list[int]) -> list[tuple[int, bool]]:
    """A shuffled list of (label, is_mixed) pairs, with ``MIXED_SHARE`` of the rows mixed."""
    labels = [label for label, count in enumerate(counts) for _ in range(count)]
    rng.shuffle(labels)
    mixed = set(rng.sample(range(len(labels)), round(MIXED_SHARE * len(labels))))
    return [(label, i in mixed) for i, label in enumerate(labels)]


def generate_split(
    rng: random.Random, counts: list[int], make_text: TextMaker, seen: set[str]
) -> list[Row]:
    """Rows for one split, drawing again whenever a text was already used in this task."""
    rows = []
    for label, mixed in label_plan(rng, counts):
        text = make_text(rng, label, mixed)
        while text in seen:
            text = make_text(rng, label, mixed)
        seen.add(text)
        rows.append({"text": text, "label": label})
    return rows


def word_count(text: str) -> int:
    return len(text.split())


# --------------------------------------------------------------------------------------------
# IMDB-like reviews
# --------------------------------------------------------------------------------------------


def review_cast(rng: random.Random) -> dict[str, str]:
    """The invented names and details that one review's templates refer to."""
    first_names = rng.sample(FIRST_NAMES, 5)
    surnames = rng.sample(SURNAMES, 3)
    return {
        "title": f"{rng.choice(TITLE_FIRST)} {rng.choice(TITLE_SECOND)}",
        "genre": rng.choice(GENRES),
        "year": str(rng.randint(1962, 2023)),
        "director": f"{first_names[0]} {surnames[0]}",
        "actor": f"{first_names[1]} {surnames[1]}",
        "actor2": f"{first_names[2]} {surnames[2]}",
        "char": first_names[3],
        "char2": first_names[4],
        "job": rng.choice(JOBS),
        "job2": rng.choice(JOBS),
        "setting": rng.choice(SETTINGS),
        "plot_turn": rng.choice(PLOT_TURNS),
        "goal": rng.choice(GOALS),
        "theme": rng.choice(THEMES),
        "occasion": rng.choice(OCCASIONS),
        "relative": rng.choice(RELATIVES),
    }


def craft_sentence(rng: random.Random, aspect: str, polarity: int) -> str:
    adjective = rng.choice(CRAFT_ADJECTIVES[polarity])
    return f"{aspect.capitalize()} is {adjective}{rng.choice(CRAFT_TAILS)}."


def opinion_polarity(rng: random.Random, label: int, mixed: bool) -> int:
    """Most opinions agree with the label; a mixed review's opinions mostly go against it."""
    agrees = rng.random() < (0.3 if mixed else 0.85)
    return label if agrees else 1 - label


def body_sentences(rng: random.Random, label: int, mixed: bool, cast: dict[str, str]) -> list[str]:
    """Every sentence one review may use, shuffled: plot, filler and one opinion per aspect."""
    opinions = [
        OPINIONS[opinion_polarity(rng, label, mixed)][i].format(**cast)
        for i in range(len(OPINIONS[POS]))
    ]
    crafts = [
        craft_sentence(rng, aspect, opinion_polarity(rng, label, mixed))
        for aspect in CRAFT_ASPECTS
    ]
    facts = [template.format(**cast) for template in PLOT_SENTENCES + NEUTRAL_SENTENCES]
    pool = opinions + crafts + facts
    rng.shuffle(pool)
    return pool


def verdict(rng: random.Random, label: int, mixed: bool) -> str:
    sentence = rng.choice((MIXED_VERDICTS if mixed else VERDICTS)[label])
    if rng.random() < 0.4:
        low, high = RATING_RANGES[(label, mixed)]
        rating = rng.choice(RATING_FORMATS).format(n=rng.randint(low, high))
        sentence = f"{sentence} {rating}"
    return sentence


def review_length(rng: random.Random) -> int:
    """Target word count: most 40-150 words, a fifth past 200, and 0 for a two-sentence review."""
    bucket = rng.random()
    if bucket < 0.04:
        return 0
    if bucket < 0.24:
        return rng.randint(205, 330)
    return rng.randint(40, 135)


def imdb_review(rng: random.Random, label: int, mixed: bool) -> str:
    """One review: an opening, body sentences up to a target length, and a verdict."""
    cast = review_cast(rng)
    target = review_length(rng)
    closing = verdict(rng, label, mixed)
    if target == 0:
        opinion = rng.choice(OPINIONS[1 - label if mixed else label]).format(**cast)
        return f"{opinion} {closing}"
    sentences = [rng.choice(OPENINGS).format(**cast)]
    words = word_count(sentences[0]) + word_count(closing)
    for sentence in body_sentences(rng, label, mixed, cast):
        if words >= target:
            break
        sentences.append(sentence)
        words += word_count(sentence)
    return " ".join([*sentences, closing])


# --------------------------------------------------------------------------------------------
# Emotion-like sentences
# --------------------------------------------------------------------------------------------


def neutral_context(rng: random.Random) -> str:
    return rng.choice(NEUTRAL_CONTEXTS).format(
        topic=rng.choice(TOPICS), person=rng.choice(PEOPLE), time=rng.choice(TIMES)
    )


def emotion_context(rng: random.Random, label: int) -> str:
    """A class-indicative context half of the time, a neutral one otherwise."""
    if rng.random() < 0.5:
        return rng.choice(EMOTION_CONTEXTS[label])
    return neutral_context(rng)


def emotion_sentence(rng: random.Random, label: int, mixed: bool) -> str:
    """One lowercase first-person sentence of 8 to 30 words, without final punctuation."""
    text = compose_emotion_sentence(rng, label, mixed)
    while not 8 <= word_count(text) <= 30:
        text = compose_emotion_sentence(rng, label, mixed)
    return text


def compose_emotion_sentence(rng: random.Random, label: int, mixed: bool) -> str:
    """Fill a plain template, or for a mixed row one that also names another class's emotion."""
    other = rng.choice([i for i in range(len(EMOTION_LABELS)) if i != label])
    word, word2 = rng.sample(EMOTION_WORDS[label], 2)
    slots = {
        "prefix": rng.choice(FEEL_PREFIXES),
        "intensifier": rng.choice(INTENSIFIERS),
        "word": word,
        "word2": word2,
        "other": rng.choice(EMOTION_WORDS[other]),
        "context": emotion_context(rng, label),
        "cue": rng.choice(EMOTION_CONTEXTS[label]),
        "time": rng.choice(TIMES),
        "other_context": rng.choice(EMOTION_CONTEXTS[other]),
        "neutral": neutral_context(rng),
        "tail": rng.choice(TAILS),
    }
    return rng.choice(MIXED_TEMPLATES if mixed else PLAIN_TEMPLATES).format(**slots)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def write_jsonl(path: Path, rows: list[Row]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def build_task(
    out_dir: Path,
    seed: int,
    split_counts: dict[str, list[int]],
    make_text: TextMaker,
) -> dict[str, list[Row]]:
    """Generate and write every split of one task, with no text repeated across splits."""
    rng = random.Random(seed)
    seen: set[str] = set()
    splits = {}
    for split, counts in split_counts.items():
        splits[split] = generate_split(rng, counts, make_text, seen)
        write_jsonl(out_dir / f"{split}.jsonl", splits[split])
    return splits


def count_table(splits: dict[str, list[Row]], label_names: tuple[str, ...]) -> str:
    """A markdown table: one row per split, with the row count and the count of each class."""
    header = "| split | rows | " + " | ".join(
        f"{i} {name}" for i, name in enumerate(label_names)
    ) + " |"
    rule = "|---" * (len(label_names) + 2) + "|"
    lines = [header, rule]
    for split, rows in splits.items():
        counts = Counter(row["label"] for row in rows)
        cells = [split, str(len(rows)), *(str(counts[i]) for i in range(len(label_names)))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_readme(imdb: dict[str, list[Row]], emotion: dict[str, list[Row]]) -> str:
    return f"""# Fixture samples for the offline and tiny profiles

Small offline stand-ins for IMDB (`stanfordnlp/imdb`) and Emotion (`dair-ai/emotion`), used by
the `offline` profile (the notebooks where the Hugging Face Hub cannot be reached) and the `tiny`
profile (unit tests), so that both run in minutes without network access. They have
the real datasets' schema (one JSON object per line: `{{"text": str, "label": int}}`), label order
and split names, but they are not those datasets: every text is generated by
`scripts/make_fixtures.py` from templates and phrase banks written for this project, and nothing
is copied or paraphrased from IMDB or dair-ai/emotion. About 10% of each split is deliberately
mixed or ambiguous. Numbers measured on these samples say nothing about IMDB or Emotion.

Regenerate (deterministic, fixed seeds; the output is identical on every run):

```bash
.venv/bin/python scripts/make_fixtures.py
```

## imdb

Movie reviews, 0 = neg, 1 = pos; most are 40-150 words, about a fifth are over 200 words.

{count_table(imdb, IMDB_LABELS)}

## emotion

Lowercase first-person sentences of 8-30 words, six classes with Emotion's imbalance.

{count_table(emotion, EMOTION_LABELS)}
"""


def build_fixtures(out_dir: Path = FIXTURES_DIR) -> dict[str, dict[str, list[Row]]]:
    """Write both tasks' splits and the README under ``out_dir``; return the rows per task."""
    imdb = build_task(
        out_dir / "imdb",
        IMDB_SEED,
        {split: [size // 2, size - size // 2] for split, size in IMDB_SPLIT_SIZES.items()},
        imdb_review,
    )
    emotion = build_task(
        out_dir / "emotion",
        EMOTION_SEED,
        {split: class_counts(size, EMOTION_SHARES) for split, size in EMOTION_SPLIT_SIZES.items()},
        emotion_sentence,
    )
    (out_dir / "README.md").write_text(render_readme(imdb, emotion), encoding="utf-8", newline="\n")
    return {"imdb": imdb, "emotion": emotion}


def main() -> None:
    tasks = build_fixtures()
    label_names = {"imdb": IMDB_LABELS, "emotion": EMOTION_LABELS}
    print(f"wrote fixtures to {FIXTURES_DIR}")
    for task, splits in tasks.items():
        for split, rows in splits.items():
            counts = Counter(row["label"] for row in rows)
            per_class = ", ".join(f"{name} {counts[i]}" for i, name in enumerate(label_names[task]))
            print(f"{task}/{split}: {len(rows)} rows ({per_class})")


if __name__ == "__main__":
    main()
