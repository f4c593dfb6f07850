"""Constraints: write about a topic while following one verifiable rule.

A prompt asks for a few words on a topic and adds one constraint, e.g.
"Describe the ocean. Use at most 12 words." or "Tell me about coffee. Include
the word 'morning'.".  Constraint types (the ``kind`` column):

===============  ==========================================================
``max_words``    at most N words
``min_words``    at least N words
``include_word`` use a given word (case-insensitive whole-word match)
``avoid_word``   do not use a given word
``start_word``   start the answer with a given word
``uppercase``    the whole answer in capital letters (no lowercase letter)
``lowercase``    the whole answer in lowercase letters (no capital letter)
``end_question`` end the answer with a question (last non-space char is "?")
``bullets``      exactly N bullet points (lines starting with "- " or "* ")
``no_commas``    no commas at all
===============  ==========================================================

Responses are built from a bank of fluent sentences per topic, so chosen and
rejected are natural English of similar length (the same number of sentences
wherever the constraint allows).  The chosen response satisfies the constraint;
the rejected one violates it, usually by a near miss: a few words over the
limit, one bullet too many, the forbidden word once, one sentence left in the
wrong case, the question placed first instead of last.

Words are counted by splitting on whitespace and keeping the pieces that
contain a letter or digit.  Whatever the constraint, a response of fewer than
``MIN_ANSWER_WORDS`` (5) words fails: every request asks for sentences about
the topic, and a topic word or an emoji run answers none of them.  The judge parses the constraint back out of the
prompt text with the regexes in ``CONSTRAINT_PATTERNS``.

The ``ood`` split (``OOD_KINDS``) shares no topic (``OOD_TOPICS``), request
(``OOD_BASE_PROMPTS``), layout (``OOD_LAYOUTS``), constraint wording
(``OOD_CONSTRAINT_PHRASES``) or opening word with train/test, and adds three
kinds that train/test never contain (``OOD_ONLY_KINDS``):

===================  ======================================================
``sentence_count``   exactly N sentences (pieces ending in . ! or ?)
``title``            a title in double angle brackets, <<like this>>
``postscript``       a "P.S." starting a line or sentence after the answer
===================  ======================================================

Every kind of ``ood`` is equally frequent.  The judge is the same rule: each
pattern also reads the ood wording of its kind.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from prefrl.data.tasks.base import Example, Task


@dataclass(frozen=True)
class Topic:
    """A topic: how prompts name it, statements about it and questions about it."""

    name: str
    statements: tuple[str, ...]
    questions: tuple[str, ...]


# Sentences never start with a proper noun or "I", so that lowering their first
# letter after an opening word ("Honestly, coffee is ...") stays correct.
TOPICS: tuple[Topic, ...] = (
    Topic(
        "the ocean",
        (
            "The ocean covers more than two thirds of the planet.",
            "Waves carry energy across thousands of miles of open water.",
            "Tides rise and fall twice a day because of the moon.",
            "Many creatures live in the deep sea, far from any sunlight.",
            "Coral reefs shelter a huge variety of colorful fish.",
            "Sea water tastes salty because rivers carry minerals into it.",
            "Whales sing long songs that travel a great distance underwater.",
            "Standing on a beach at sunset feels calm and peaceful.",
            "Ocean currents move warm water toward colder regions, shaping the weather.",
            "Plastic waste is a serious threat to marine life.",
        ),
        (
            "Have you ever watched the tide come in?",
            "What do you think lives at the very bottom of the sea?",
            "Would you rather explore a coral reef or the deep ocean?",
        ),
    ),
    Topic(
        "coffee",
        (
            "Coffee is brewed from the roasted seeds of a small red fruit.",
            "Many people drink a cup first thing in the morning.",
            "A good espresso has a thin layer of golden crema on top.",
            "Light roasts taste brighter, while dark roasts taste bolder.",
            "Caffeine can make you feel alert for several hours.",
            "Cafes are popular places to meet friends or get some work done.",
            "Cold brew is made by steeping grounds in water overnight.",
            "Adding milk softens the bitterness of a strong cup.",
            "Coffee plants grow best in warm, wet hills near the equator.",
            "Grinding beans just before brewing keeps the flavor fresh.",
        ),
        (
            "How do you like your coffee in the morning?",
            "Have you ever tried coffee brewed with a French press?",
            "Do you prefer a hot cup or an iced one?",
        ),
    ),
    Topic(
        "autumn",
        (
            "Autumn arrives when the days grow shorter and the air turns crisp.",
            "Leaves change from green to red, orange, and gold.",
            "Farmers harvest apples and pumpkins during this season.",
            "A warm sweater feels perfect on a cool evening.",
            "Many birds fly south before the first frost.",
            "Walking through fallen leaves makes a pleasant crunching sound.",
            "Squirrels gather nuts to store for the long winter.",
            "Rainy afternoons are ideal for reading with a cup of tea.",
            "In many places, autumn is a time for festivals and feasts.",
            "Cooler weather often brings fog to the valleys at dawn.",
        ),
        (
            "What is your favorite thing about autumn?",
            "Have you ever jumped into a pile of leaves?",
            "Do you enjoy the cooler weather?",
        ),
    ),
    Topic(
        "city parks",
        (
            "City parks give people a quiet place to rest.",
            "Children play on swings, while their parents chat nearby.",
            "Tall trees provide shade on hot summer days.",
            "Many parks host concerts and markets on weekends.",
            "Joggers and cyclists use the paths early in the morning.",
            "A small pond can attract ducks, frogs, and dragonflies.",
            "Green spaces help cool the surrounding streets.",
            "Picnics on the grass are a simple way to enjoy the weekend.",
            "Volunteers often plant flowers and pick up litter.",
            "Even a tiny park can make a crowded neighborhood feel calmer.",
        ),
        (
            "Is there a park near where you live?",
            "What do you like to do in a park?",
            "When did you last have a picnic outside?",
        ),
    ),
    Topic(
        "learning a language",
        (
            "Learning a new language takes patience and daily practice.",
            "Listening to native speakers helps you pick up a natural rhythm.",
            "Mistakes are a normal part of the process, so do not fear them.",
            "Flashcards are a simple way to remember new vocabulary.",
            "Watching films with subtitles can improve your comprehension.",
            "Grammar rules make more sense once you use them in conversation.",
            "Speaking with a partner builds confidence quickly.",
            "Every language has words that are hard to translate.",
            "After a few months, reading short stories becomes much easier.",
            "Travel feels richer when you can talk with local people.",
        ),
        (
            "Which language would you most like to learn?",
            "Have you ever tried to learn a language on your own?",
            "How do you remember new words?",
        ),
    ),
    Topic(
        "bicycles",
        (
            "Bicycles are among the most efficient machines ever invented.",
            "Riding to work can save money and improve your fitness.",
            "A well oiled chain makes pedaling smooth and quiet.",
            "Helmets protect riders from serious head injuries.",
            "Many cities now have dedicated lanes for cyclists.",
            "Mountain bikes have wide tires that grip rough trails.",
            "Learning to balance on two wheels is a childhood milestone.",
            "On a sunny day, a long ride through the countryside is a joy.",
            "Flat tires are easy to fix with a small repair kit.",
            "Bikes produce no exhaust, so they keep the air clean.",
        ),
        (
            "Do you remember learning to ride a bike?",
            "Would you ride a bicycle to work?",
            "Where is your favorite place to cycle?",
        ),
    ),
    Topic(
        "the night sky",
        (
            "On a clear night, thousands of stars are visible without a telescope.",
            "The moon changes shape over a cycle of about a month.",
            "Planets shine steadily, while stars seem to twinkle.",
            "City lights make it harder to see faint stars.",
            "Meteor showers happen when our planet passes through comet dust.",
            "Ancient sailors used the stars to find their way.",
            "The band of the Milky Way stretches across dark skies.",
            "Satellites look like slow, silent points of light.",
            "Watching the sky can make everyday worries feel small.",
            "Some stars we see burned out long ago.",
        ),
        (
            "Have you ever seen a shooting star?",
            "What is the brightest thing you have seen in the night sky?",
            "Would you like to look through a large telescope?",
        ),
    ),
    Topic(
        "cooking at home",
        (
            "Cooking at home lets you control exactly what goes into your food.",
            "A sharp knife makes chopping vegetables faster and safer.",
            "Simple meals often taste the best.",
            "Fresh herbs, like basil or mint, can brighten almost any dish.",
            "Planning meals for the week saves both time and money.",
            "Soups and stews are forgiving dishes for beginners.",
            "Tasting as you cook helps you balance the flavors.",
            "Baking bread fills the whole kitchen with a wonderful smell.",
            "Leftovers can become a quick lunch the next day.",
            "With a little practice, anyone can learn to cook well.",
        ),
        (
            "What dish do you cook most often?",
            "Have you ever baked your own bread?",
            "Do you enjoy trying new recipes?",
        ),
    ),
    Topic(
        "rain",
        (
            "Rain brings water to rivers, lakes, and fields.",
            "The sound of rain on a roof is soothing to many people.",
            "Puddles form quickly on uneven streets.",
            "Plants look greener after a heavy shower.",
            "Umbrellas and raincoats keep us dry on wet days.",
            "Thunderstorms can bring sudden bursts of heavy rain.",
            "A light drizzle often falls in the early morning.",
            "Farmers depend on steady rainfall for their crops.",
            "After a storm, the air smells fresh and clean.",
            "Sometimes a rainbow appears when sunlight breaks through the clouds.",
        ),
        (
            "Do you enjoy walking in the rain?",
            "What do you like to do on a rainy day?",
            "Have you ever been caught in a sudden storm?",
        ),
    ),
    Topic(
        "libraries",
        (
            "Libraries lend books to anyone with a free card.",
            "Quiet reading rooms are perfect for studying.",
            "Librarians help visitors find exactly what they need.",
            "Many libraries also offer computers and free internet access.",
            "Story time for children is a popular weekly event.",
            "Old libraries often have tall shelves and wooden ladders.",
            "Borrowing books instead of buying them saves a lot of money.",
            "Some libraries lend tools, games, and even musical instruments.",
            "A library card opens the door to thousands of stories.",
            "In small towns, the library is often a community center.",
        ),
        (
            "When did you last visit a library?",
            "What kind of books do you like to borrow?",
            "Did you go to story time as a child?",
        ),
    ),
    Topic(
        "mountains",
        (
            "Mountains form over millions of years as huge plates of rock collide.",
            "The air gets thinner and colder as you climb higher.",
            "Snow can stay on the highest peaks all year.",
            "Hikers should carry water, a map, and warm layers.",
            "Mountain lakes are often cold and very clear.",
            "Goats and eagles are well suited to steep, rocky slopes.",
            "Weather in the mountains can change within minutes.",
            "Reaching a summit gives a sense of accomplishment.",
            "Many rivers begin as small streams high in the hills.",
            "From the top, the view can stretch for dozens of miles.",
        ),
        (
            "Have you ever climbed a mountain?",
            "Would you rather hike in the mountains or relax on a beach?",
            "What is the highest place you have visited?",
        ),
    ),
    Topic(
        "dogs",
        (
            "Dogs have lived alongside humans for thousands of years.",
            "A dog's sense of smell is far stronger than ours.",
            "Daily walks keep dogs healthy and happy.",
            "Puppies need patience, training, and lots of sleep.",
            "Many dogs love to fetch a ball again and again.",
            "Some breeds are gentle giants, while others are tiny and lively.",
            "Service dogs help people with many kinds of tasks.",
            "A wagging tail usually means a dog is excited.",
            "Dogs learn best with rewards and a calm voice.",
            "Coming home to a happy dog can brighten any day.",
        ),
        (
            "Do you have a dog at home?",
            "What is your favorite dog breed?",
            "Have you ever taught a dog a new trick?",
        ),
    ),
)

#: Topics of the ``ood`` split only: no train/test prompt names them.
OOD_TOPICS: tuple[Topic, ...] = (
    Topic(
        "trains",
        (
            "Trains can carry hundreds of passengers at once.",
            "A long freight train may stretch for over a mile.",
            "Sleeper cars let travelers rest through the night.",
            "Steam engines once powered most railways in the world.",
            "Fast electric trains now link many large cities.",
            "Watching the landscape roll past the window is relaxing.",
            "Stations are often busy, noisy, and full of life.",
            "Railway tracks must be inspected often for damage.",
            "A train journey can be calmer than a flight.",
            "Some mountain railways climb remarkably steep slopes.",
        ),
        (
            "Have you ever taken an overnight train?",
            "Where would you go on a long train journey?",
            "Do you prefer trains or buses?",
        ),
    ),
    Topic(
        "gardening",
        (
            "Gardening teaches patience because plants grow slowly.",
            "Healthy soil is the secret behind strong roots.",
            "Tomatoes need plenty of sun and regular watering.",
            "Weeds compete with young seedlings for water.",
            "Compost turns kitchen scraps into rich fertilizer.",
            "Bees, butterflies, and birds visit a flowering garden.",
            "Pruning helps shrubs keep a tidy shape.",
            "A small balcony can still hold several pots of herbs.",
            "Early mornings are the best time to water plants.",
            "Picking your own vegetables is deeply satisfying.",
        ),
        (
            "What would you plant in your own garden?",
            "Have you ever grown vegetables from seed?",
            "Do you enjoy working with soil?",
        ),
    ),
    Topic(
        "the desert",
        (
            "Deserts receive very little rain each year.",
            "Days can be scorching, while nights turn surprisingly cold.",
            "Cactus plants store water in their thick stems.",
            "Sand dunes slowly shift shape with the wind.",
            "Many desert animals sleep through the hottest hours.",
            "Camels can walk for days without drinking.",
            "An oasis forms where water reaches the surface.",
            "Sudden storms can flood dry riverbeds within minutes.",
            "The silence of a desert night feels enormous.",
            "Travelers should carry extra water and cover their heads.",
        ),
        (
            "Would you like to cross a desert on foot?",
            "Have you ever seen sand dunes up close?",
            "What would you pack for a desert trip?",
        ),
    ),
    Topic(
        "board games",
        (
            "Board games bring friends and family around one table.",
            "Some games reward careful planning over luck.",
            "Rolling dice adds a welcome touch of chance.",
            "Learning the rules can take a whole evening.",
            "Cooperative games ask players to win or lose together.",
            "A close match often ends with loud laughter.",
            "Classic games like chess have been played for centuries.",
            "Card decks, tokens, and tiles fill the boxes of modern games.",
            "Game nights are a cheap way to spend time together.",
            "Losing gracefully is part of the fun.",
        ),
        (
            "What is your favorite board game?",
            "Do you prefer strategy games or party games?",
            "Who usually wins when your family plays?",
        ),
    ),
    Topic(
        "volcanoes",
        (
            "Volcanoes form where molten rock rises from deep underground.",
            "Lava can reach temperatures above a thousand degrees.",
            "Ash clouds may drift across entire continents.",
            "Some volcanoes have been quiet for thousands of years.",
            "Volcanic soil is often very fertile.",
            "Scientists watch for small earthquakes before an eruption.",
            "New islands can grow from eruptions beneath the sea.",
            "Hot springs, geysers, and steam vents appear near volcanic areas.",
            "A sleeping volcano can still wake without much warning.",
            "Cooled lava leaves behind dark and jagged rock.",
        ),
        (
            "Would you like to see a volcano erupt from a safe distance?",
            "Have you ever bathed in a hot spring?",
            "Do you know of a volcano near your home?",
        ),
    ),
    Topic(
        "museums",
        (
            "Museums keep objects that tell the story of the past.",
            "Curators decide how each exhibit is arranged.",
            "A quiet gallery invites slow and careful looking.",
            "Dinosaur skeletons are favorites with young visitors.",
            "Many museums offer free entry on certain days.",
            "Audio guides explain the history behind each piece.",
            "Paintings, statues, and old maps fill the upper halls.",
            "Restorers work for months to repair a damaged artwork.",
            "Small local museums often hold surprising treasures.",
            "A single visit is rarely enough to see everything.",
        ),
        (
            "Which museum would you most like to visit?",
            "Do you prefer art museums or science museums?",
            "What exhibit has stayed in your memory?",
        ),
    ),
    Topic(
        "snow",
        (
            "Snow forms when water vapor freezes high in the clouds.",
            "No two snowflakes are shaped exactly alike.",
            "Fresh snow muffles sound and makes towns feel hushed.",
            "Children build snowmen and throw snowballs in the park.",
            "Heavy snowfall can close roads and schools.",
            "Skiers wait eagerly for the first big storm.",
            "Melting snow feeds rivers in the spring.",
            "A thick blanket of snow protects plants from frost.",
            "Shoveling the driveway is tiring, but good exercise.",
            "Footprints in fresh snow show who passed by.",
        ),
        (
            "Have you ever built a snowman?",
            "Do you like skiing or sledding more?",
            "What is the deepest snow you have seen?",
        ),
    ),
    Topic(
        "honeybees",
        (
            "Honeybees live in colonies of many thousands.",
            "A single queen lays nearly all of the eggs.",
            "Worker bees collect nectar and pollen from flowers.",
            "Bees communicate by performing a waggle dance.",
            "Honey is made from nectar that bees store in wax cells.",
            "Many crops depend on bees for pollination.",
            "Beekeepers wear veils, gloves, and light clothing.",
            "A hive stays warm in winter as bees huddle together.",
            "Losing bees would make many foods scarce.",
            "Planting wildflowers gives bees more to eat.",
        ),
        (
            "Have you ever tasted honey straight from a hive?",
            "Would you like to keep bees yourself?",
            "Which flowers do you think bees like best?",
        ),
    ),
)

#: Requests to which any constraint below can be added.
BASE_PROMPTS = (
    "Write a few sentences about {topic}.",
    "Write a short paragraph about {topic}.",
    "Tell me about {topic}.",
    "Describe {topic}.",
    "Share a few thoughts about {topic}.",
    "Write a short note about {topic}.",
)
#: Requests that suit a bulleted answer (a "paragraph" would contradict bullets).
LIST_BASE_PROMPTS = (
    "Tell me about {topic}.",
    "Describe {topic}.",
    "List a few facts about {topic}.",
    "Share a few thoughts about {topic}.",
)

#: How each constraint is worded; ``{n}`` is a number, ``{word}`` a word.
CONSTRAINT_PHRASES: dict[str, tuple[str, ...]] = {
    "max_words": ("Use at most {n} words.", "Keep your answer to at most {n} words.", "Answer in at most {n} words."),
    "min_words": ("Use at least {n} words.", "Write at least {n} words.", "Make your answer at least {n} words long."),
    "include_word": (
        "Include the word '{word}'.",
        "Make sure to use the word '{word}'.",
        "Mention the word '{word}' at least once.",
    ),
    "avoid_word": ("Do not use the word '{word}'.", "Avoid the word '{word}'.", "Never use the word '{word}'."),
    "start_word": (
        "Start your answer with the word '{word}'.",
        "Begin your answer with the word '{word}'.",
        "The first word of your answer must be '{word}'.",
    ),
    "uppercase": (
        "Write your whole answer in capital letters.",
        "Use only capital letters.",
        "Answer entirely in uppercase.",
    ),
    "lowercase": (
        "Write your whole answer in lowercase letters.",
        "Use only lowercase letters.",
        "Answer entirely in lowercase.",
    ),
    "end_question": ("End your answer with a question.", "Finish your answer with a question."),
    "bullets": (
        "Use exactly {n} bullet points.",
        "Answer with exactly {n} bullet points.",
        "Format your answer as exactly {n} bullet points.",
    ),
    "no_commas": ("Do not use any commas.", "Avoid commas entirely."),
}
#: Whole prompts that carry a word limit inside the request itself.
INLINE_PROMPTS: dict[str, tuple[str, ...]] = {
    "max_words": ("Write about {topic} in at most {n} words.", "Describe {topic} in at most {n} words."),
    "min_words": ("Write about {topic} in at least {n} words.", "Describe {topic} in at least {n} words."),
}

#: Requests of the ``ood`` split (no train/test request is among them).
OOD_BASE_PROMPTS = (
    "Could you write something short on {topic}?",
    "Give me your take on {topic}.",
    "I'd like a brief passage on {topic}.",
    "Put down some lines on {topic}.",
    "Say something interesting about {topic}.",
    "Compose a brief reflection on {topic}.",
)
OOD_LIST_PROMPTS = (
    "Give me some key points on {topic}.",
    "Sum up {topic} as a list.",
    "Could you outline {topic} for me?",
)
#: How request and constraint are put together in ``ood`` prompts.
OOD_LAYOUTS = (
    "{request} {constraint}",
    "{request}\nRule: {constraint}",
    "Task: {request}\nConstraint: {constraint}",
)
#: The ``ood`` wording of every constraint, old kinds and ood-only kinds alike.
OOD_CONSTRAINT_PHRASES: dict[str, tuple[str, ...]] = {
    "max_words": ("No more than {n} words, please.", "Keep the reply within {n} words."),
    "min_words": ("No fewer than {n} words, please.", "Let the reply run to {n} words or more."),
    "include_word": ("Work the word '{word}' into your reply.", "Your reply has to contain the word '{word}'."),
    "avoid_word": ("Steer clear of the word '{word}'.", "Leave the word '{word}' out entirely."),
    "start_word": ("Open your reply with the word '{word}'.", "Let '{word}' be the very first word."),
    "uppercase": ("Reply in all caps.", "Block capitals only."),
    "lowercase": ("Write entirely in small letters.", "Reply in all lower case."),
    "end_question": ("Close with a question for the reader.", "Make your last sentence a question."),
    "bullets": ("Reply as a list of {n} bullets.", "Give exactly {n} bulleted items."),
    "no_commas": ("Leave out every comma.", "Not a single comma may appear."),
    # kinds that train/test never contain
    "sentence_count": ("Write exactly {n} sentences.", "Your reply should be {n} sentences long."),
    "title": (
        "Give your reply a title wrapped in double angle brackets, like <<title>>.",
        "Put a title in double angle brackets, such as <<My Title>>, above the text.",
    ),
    "postscript": (
        "At the end, add a postscript starting with 'P.S.'",
        "Finish with a postscript that begins with 'P.S.'",
    ),
}
#: Constraint kinds of the ``ood`` split that train and test never contain.
OOD_ONLY_KINDS = ("postscript", "sentence_count", "title")
#: Opening words of ``start_word`` in the ``ood`` split (none is a train/test opening word).
OOD_OPENING_WORDS = ("Truly", "Admittedly", "Notably", "Overall", "Generally", "Evidently", "Luckily", "Simply")

#: How the judge recognises each constraint in a prompt.  The patterns are
#: mutually exclusive over the phrasings above, so their order does not matter.
CONSTRAINT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        # Each pattern is the train/test wording, then (after "|") the ood wording of the kind.
        ("max_words", r"\bat most (\w+) words?\b|\bno more than (\w+) words?\b|\bwithin (\w+) words?\b"),
        ("min_words", r"\bat least (\w+) words?\b|\bno fewer than (\w+) words?\b|\b(\w+) words or more\b"),
        ("bullets", r"\bexactly (\w+) bullet points?\b|\blist of (\w+) bullets\b|\bexactly (\w+) bulleted items\b"),
        (
            "include_word",
            r"\b(?:include|make sure to use|mention) the word '([^']+)'"
            r"|\bwork the word '([^']+)' into\b|\bcontain the word '([^']+)'",
        ),
        (
            "avoid_word",
            r"\b(?:do not|don't|never) use the word '([^']+)'|\bavoid the word '([^']+)'"
            r"|\bsteer clear of the word '([^']+)'|\bleave the word '([^']+)' out\b",
        ),
        (
            "start_word",
            r"\b(?:start|begin) your answer with the word '([^']+)'"
            r"|\bfirst word of your answer must be '([^']+)'"
            r"|\bopen your reply with the word '([^']+)'|\blet '([^']+)' be the very first word\b",
        ),
        ("uppercase", r"\bcapital letters\b|\buppercase\b|\ball caps\b|\bblock capitals\b"),
        ("lowercase", r"\blowercase\b|\bsmall letters\b|\blower case\b"),
        (
            "end_question",
            r"\b(?:end|finish) your answer with a question\b|\bclose with a question\b|\blast sentence a question\b",
        ),
        ("no_commas", r"\bcommas\b|\bevery comma\b|\bsingle comma\b"),
        # ood-only kinds
        ("sentence_count", r"\bexactly (\w+) sentences?\b|\b(\w+) sentences? long\b"),
        ("title", r"\bdouble angle brackets\b"),
        ("postscript", r"\bpostscript\b"),
    )
)

NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}  # fmt: skip
WORD_FOR_NUMBER = {value: word for word, value in NUMBER_WORDS.items()}

#: Opening words for ``start_word``; the rejected answer may open with another one.
OPENING_WORDS = (
    "Honestly", "Interestingly", "Actually", "Surprisingly", "Frankly",
    "Personally", "Clearly", "Naturally", "Basically", "Certainly",
)  # fmt: skip

#: Words too bland to be asked for; the two most common ones may still be forbidden.
STOPWORDS = frozenset(
    "a an the and or but so of to in on at by for from with into over than that this "
    "these those it its is are was be can as about after before while when where what "
    "your you our us they them their many some much more most very just even also only "
    "any anyone every often each both".split()
)
FORBIDDEN_FUNCTION_WORDS = ("the", "and")


# -- checking -------------------------------------------------------------------


def word_count(text: str) -> int:
    """Whitespace-separated pieces that contain a letter or digit."""
    return sum(1 for piece in text.split() if re.search(r"[^\W_]", piece))


def count_word(text: str, word: str) -> int:
    """Case-insensitive whole-word occurrences of ``word`` in ``text``."""
    return len(re.findall(rf"(?<![^\W_]){re.escape(word)}(?![^\W_])", text, re.IGNORECASE))


def bullet_count(text: str) -> int:
    """Lines that start (after indentation) with "- " or "* "."""
    return sum(1 for line in text.splitlines() if line.lstrip().startswith(("- ", "* ")))


def first_word(text: str) -> str:
    """The first word, skipping leading punctuation such as quotes or markdown."""
    match = re.match(r"[\W_]*([^\W_]+(?:'[^\W_]+)*)", text)
    return match.group(1) if match else ""


def _has_letters(text: str) -> bool:
    return any(char.isalpha() for char in text)


def sentence_count(text: str) -> int:
    """Sentences: pieces ending in ".", "!" or "?" before whitespace (or the end) that hold a letter or digit."""
    return sum(1 for piece in re.split(r"(?<=[.!?])\s+", text.strip()) if re.search(r"[^\W_]", piece))


def has_title(text: str) -> bool:
    """A title in double angle brackets, <<like this>>, with a letter or digit inside."""
    return re.search(r"<<[^<>\n]*[^\W_][^<>\n]*>>", text) is not None


def has_postscript(text: str) -> bool:
    """A "P.S." that begins a line or a sentence after some text of the answer."""
    return re.search(r"[^\W_][\s\S]*?(?:\n|[.!?]\s)\s*P\.S\.", text) is not None


#: Whether a response text satisfies a constraint, given the constraint's value.
CHECKS: dict[str, Callable[[str, Any], bool]] = {
    "max_words": lambda text, n: word_count(text) <= n,
    "min_words": lambda text, n: word_count(text) >= n,
    "include_word": lambda text, word: count_word(text, str(word)) > 0,
    "avoid_word": lambda text, word: count_word(text, str(word)) == 0,
    "start_word": lambda text, word: first_word(text).casefold() == str(word).casefold(),
    "uppercase": lambda text, _: _has_letters(text) and not any(c.islower() for c in text),
    "lowercase": lambda text, _: _has_letters(text) and not any(c.isupper() for c in text),
    "end_question": lambda text, _: text.rstrip()[-1:] == "?",
    "bullets": lambda text, n: bullet_count(text) == n,
    "no_commas": lambda text, _: "," not in text,
    "sentence_count": lambda text, n: sentence_count(text) == n,
    "title": lambda text, _: has_title(text),
    "postscript": lambda text, _: has_postscript(text),
}
NUMERIC_KINDS = frozenset({"max_words", "min_words", "bullets", "sentence_count"})
#: The fewest words that answer a request for sentences about a topic: one short sentence. Below every
#: word limit the task sets (max_words draws 8-24) and every written response (6 words and more).
MIN_ANSWER_WORDS = 5


def _parse_number(text: str) -> int:
    if text.isdigit():
        return int(text)
    if text.lower() in NUMBER_WORDS:
        return NUMBER_WORDS[text.lower()]
    raise ValueError(f"cannot read the number {text!r} in the constraint")


def parse_constraint(prompt: str) -> tuple[str, int | str | None]:
    """The constraint of a prompt as ``(kind, value)``: a number, a word, or None."""
    for kind, pattern in CONSTRAINT_PATTERNS:
        match = pattern.search(prompt)
        if match is None:
            continue
        captured = next((group for group in match.groups() if group is not None), None)
        if kind in NUMERIC_KINDS:
            return kind, _parse_number(str(captured))
        return kind, captured
    raise ValueError(f"no constraint of this task found in the prompt: {prompt!r}")


# -- generating -------------------------------------------------------------------

#: A pair of responses (chosen, rejected), or None when this draw cannot make one.
Pair = tuple[str, str] | None


def _join(sentences: Sequence[str]) -> str:
    return " ".join(sentences)


def _shuffled(rng: random.Random, sentences: Sequence[str]) -> list[str]:
    shuffled = list(sentences)
    rng.shuffle(shuffled)
    return shuffled


def _lower_first_letter(sentence: str) -> str:
    return sentence[0].lower() + sentence[1:]


def _sentences_with_length(
    rng: random.Random, pool: Sequence[str], sizes: Sequence[int], low: int, high: int
) -> list[str] | None:
    """Random sentences from the pool whose joint word count lies in [low, high]."""
    for _ in range(200):
        picked = rng.sample(pool, rng.choice(sizes))
        if low <= word_count(_join(picked)) <= high:
            return picked
    return None


def _one_then_others(
    rng: random.Random, special: Sequence[str], others: Sequence[str], size: int
) -> list[str]:
    """One sentence from ``special`` and ``size - 1`` from ``others``, in random order."""
    return _shuffled(rng, [rng.choice(special), *rng.sample(others, size - 1)])


@dataclass(frozen=True)
class TopicWords:
    """Which statements of a topic contain which candidate words."""

    topic: Topic

    @cached_property
    def candidates(self) -> list[str]:
        words = {w.lower() for s in self.topic.statements for w in re.findall(r"[A-Za-z]+", s)}
        return sorted(w for w in words if len(w) >= 4 and w not in STOPWORDS)

    def with_word(self, word: str) -> list[str]:
        return [s for s in self.topic.statements if count_word(s, word) > 0]

    def without_word(self, word: str) -> list[str]:
        return [s for s in self.topic.statements if count_word(s, word) == 0]


_TOPIC_WORDS = {topic.name: TopicWords(topic) for topic in (*TOPICS, *OOD_TOPICS)}


def _pick_word_value(rng: random.Random, topic: Topic, kind: str) -> str:
    pool = list(_TOPIC_WORDS[topic.name].candidates)
    if kind == "avoid_word":
        pool += FORBIDDEN_FUNCTION_WORDS
    return rng.choice(pool)


def _pair_max_words(rng: random.Random, topic: Topic, limit: int) -> Pair:
    chosen = _sentences_with_length(rng, topic.statements, (1, 2), limit - 5, limit)
    rejected = _sentences_with_length(rng, topic.statements, (1, 2, 3), limit + 1, limit + 4)
    return (_join(chosen), _join(rejected)) if chosen and rejected else None


def _pair_min_words(rng: random.Random, topic: Topic, minimum: int) -> Pair:
    sizes = (2, 3, 4, 5)
    chosen = _sentences_with_length(rng, topic.statements, sizes, minimum, minimum + 6)
    rejected = _sentences_with_length(rng, topic.statements, sizes, minimum - 6, minimum - 1)
    return (_join(chosen), _join(rejected)) if chosen and rejected else None


def _pair_include_word(rng: random.Random, topic: Topic, word: str) -> Pair:
    words = _TOPIC_WORDS[topic.name]
    with_word, without_word = words.with_word(word), words.without_word(word)
    size = min(rng.randint(2, 3), len(without_word))
    if not with_word or size < 1:
        return None
    chosen = _one_then_others(rng, with_word, without_word, size)
    return _join(chosen), _join(rng.sample(without_word, size))


def _pair_avoid_word(rng: random.Random, topic: Topic, word: str) -> Pair:
    words = _TOPIC_WORDS[topic.name]
    with_word, without_word = words.with_word(word), words.without_word(word)
    size = min(rng.randint(2, 3), len(without_word))
    if not with_word or size < 1:
        return None
    # The near miss: the forbidden word slips in exactly once where possible.
    once = [s for s in with_word if count_word(s, word) == 1] or with_word
    rejected = _one_then_others(rng, once, without_word, size)
    return _join(rng.sample(without_word, size)), _join(rejected)


def _pair_start_word(rng: random.Random, topic: Topic, word: str, openings: Sequence[str] = OPENING_WORDS) -> Pair:
    def opened_with(opening: str) -> str:
        first, *rest = rng.sample(topic.statements, rng.randint(2, 3))
        return _join([f"{opening}, {_lower_first_letter(first)}", *rest])

    if rng.random() < 0.7:  # near miss: a different opening word of the same kind
        rejected = opened_with(rng.choice([w for w in openings if w != word]))
    else:
        rejected = _join(rng.sample(topic.statements, rng.randint(2, 3)))
    return opened_with(word), rejected


def _pair_letter_case(rng: random.Random, topic: Topic, to_case: Callable[[str], str]) -> Pair:
    size = rng.randint(2, 3)
    chosen = [to_case(s) for s in rng.sample(topic.statements, size)]
    rejected = rng.sample(topic.statements, size)
    if rng.random() < 0.7:  # near miss: every sentence but one converted
        slip = rng.randrange(size)
        rejected = [s if i == slip else to_case(s) for i, s in enumerate(rejected)]
    return _join(chosen), _join(rejected)


def _pair_end_question(rng: random.Random, topic: Topic, _: None) -> Pair:
    size = rng.randint(2, 3)
    question = rng.choice(topic.questions)
    chosen = [*rng.sample(topic.statements, size - 1), question]
    if rng.random() < 0.6:  # near miss: the question comes first instead of last
        rejected = [rng.choice(topic.questions), *rng.sample(topic.statements, size - 1)]
    else:
        rejected = rng.sample(topic.statements, size)
    return _join(chosen), _join(rejected)


def _pair_bullets(rng: random.Random, topic: Topic, count: int) -> Pair:
    marker = rng.choice(("- ", "* "))
    intro = [f"Here are a few points about {topic.name}:"] if rng.random() < 0.5 else []
    wrong_count = count + 1 if count == 2 or rng.random() < 0.5 else count - 1

    def bulleted(n: int) -> str:
        return "\n".join([*intro, *(marker + s for s in rng.sample(topic.statements, n))])

    return bulleted(count), bulleted(wrong_count)


def _pair_no_commas(rng: random.Random, topic: Topic, _: None) -> Pair:
    with_comma = [s for s in topic.statements if "," in s]
    without_comma = [s for s in topic.statements if "," not in s]
    size = rng.randint(2, 3)
    # The near miss: a single comma where possible.
    one_comma = [s for s in with_comma if s.count(",") == 1] or with_comma
    rejected = _one_then_others(rng, one_comma, without_comma, size)
    return _join(rng.sample(without_comma, size)), _join(rejected)


@dataclass(frozen=True)
class ConstraintKind:
    """How to draw a constraint's value and build a (chosen, rejected) pair for it."""

    pick_value: Callable[[random.Random, Topic], Any]
    make_pair: Callable[[random.Random, Topic, Any], Pair]


CONSTRAINT_KINDS: dict[str, ConstraintKind] = {
    "max_words": ConstraintKind(lambda rng, _: rng.randint(8, 24), _pair_max_words),
    "min_words": ConstraintKind(lambda rng, _: rng.randint(20, 40), _pair_min_words),
    "include_word": ConstraintKind(
        lambda rng, topic: _pick_word_value(rng, topic, "include_word"), _pair_include_word
    ),
    "avoid_word": ConstraintKind(
        lambda rng, topic: _pick_word_value(rng, topic, "avoid_word"), _pair_avoid_word
    ),
    "start_word": ConstraintKind(lambda rng, _: rng.choice(OPENING_WORDS), _pair_start_word),
    "uppercase": ConstraintKind(lambda rng, _: None, lambda rng, topic, _: _pair_letter_case(rng, topic, str.upper)),
    "lowercase": ConstraintKind(lambda rng, _: None, lambda rng, topic, _: _pair_letter_case(rng, topic, str.lower)),
    "end_question": ConstraintKind(lambda rng, _: None, _pair_end_question),
    "bullets": ConstraintKind(lambda rng, _: rng.randint(2, 5), _pair_bullets),
    "no_commas": ConstraintKind(lambda rng, _: None, _pair_no_commas),
}


# -- the ood split: new kinds, wordings and topics ----------------------------------


def _pair_sentence_count(rng: random.Random, topic: Topic, count: int) -> Pair:
    # The near miss: one sentence too many or too few.
    wrong_count = count + 1 if count == 1 or rng.random() < 0.5 else count - 1
    return _join(rng.sample(topic.statements, count)), _join(rng.sample(topic.statements, wrong_count))


#: Titles for the ``title`` kind; ``{name}`` is the topic with a capital first letter.
TITLE_PATTERNS = ("{name}", "A Few Words on {name}", "Notes on {name}", "All About {name}", "Thinking About {name}")


def _pair_title(rng: random.Random, topic: Topic, _: None) -> Pair:
    name = " ".join(word.capitalize() for word in topic.name.split())
    title = rng.choice(TITLE_PATTERNS).format(name=name)
    body = _join(rng.sample(topic.statements, rng.randint(2, 3)))
    # The near miss: the same title in single brackets, bold, or on its own line.
    wrong_title = rng.choice((f"<{title}>", f"**{title}**", title))
    return f"<<{title}>>\n{body}", f"{wrong_title}\n{body}"


def _pair_postscript(rng: random.Random, topic: Topic, _: None) -> Pair:
    body, extra = _join(rng.sample(topic.statements, rng.randint(2, 3))), rng.choice(topic.questions)
    # The near miss: the afterthought is there, but not marked as a postscript.
    unmarked = rng.choice((f"{body}\n\n{extra}", f"{body} {extra}", f"{body}\n\nNote: {extra}"))
    return f"{body}\n\nP.S. {extra}", unmarked


#: Every kind of the ``ood`` split: the train/test kinds (drawn with ood values where they name
#: words) and the ood-only kinds.
OOD_CONSTRAINT_KINDS: dict[str, ConstraintKind] = {
    **CONSTRAINT_KINDS,
    "start_word": ConstraintKind(
        lambda rng, _: rng.choice(OOD_OPENING_WORDS),
        lambda rng, topic, word: _pair_start_word(rng, topic, word, OOD_OPENING_WORDS),
    ),
    "sentence_count": ConstraintKind(lambda rng, _: rng.randint(2, 5), _pair_sentence_count),
    "title": ConstraintKind(lambda rng, _: None, _pair_title),
    "postscript": ConstraintKind(lambda rng, _: None, _pair_postscript),
}
OOD_KINDS: tuple[str, ...] = tuple(sorted(OOD_CONSTRAINT_KINDS))


def _write_ood_prompt(rng: random.Random, kind: str, topic: Topic, value: int | str | None) -> str:
    number = value
    if kind in ("bullets", "sentence_count") and rng.random() < 0.5:
        number = WORD_FOR_NUMBER[int(value)]  # type: ignore[arg-type]
    constraint = rng.choice(OOD_CONSTRAINT_PHRASES[kind]).format(n=number, word=value)
    request = rng.choice(OOD_LIST_PROMPTS if kind == "bullets" else OOD_BASE_PROMPTS).format(topic=topic.name)
    return rng.choice(OOD_LAYOUTS).format(request=request, constraint=constraint)


def _write_prompt(rng: random.Random, kind: str, topic: Topic, value: int | str | None) -> str:
    if kind in INLINE_PROMPTS and rng.random() < 0.25:
        return rng.choice(INLINE_PROMPTS[kind]).format(topic=topic.name, n=value)
    number = value
    if kind == "bullets" and rng.random() < 0.5:
        number = WORD_FOR_NUMBER[int(value)]
    constraint = rng.choice(CONSTRAINT_PHRASES[kind]).format(n=number, word=value)
    request = rng.choice(LIST_BASE_PROMPTS if kind == "bullets" else BASE_PROMPTS)
    request = request.format(topic=topic.name)
    # Mostly request first, sometimes the constraint leads.
    return f"{constraint} {request}" if rng.random() < 0.25 else f"{request} {constraint}"


class ConstraintsTask(Task):
    """Write about a topic while following one verifiable constraint."""

    name = "constraints"
    ood_kinds = OOD_KINDS

    def sample(self, rng: random.Random) -> Example:
        while True:
            kind = rng.choice(sorted(CONSTRAINT_KINDS))
            topic = rng.choice(TOPICS)
            spec = CONSTRAINT_KINDS[kind]
            value = spec.pick_value(rng, topic)
            pair = spec.make_pair(rng, topic, value)
            if pair is not None:
                break
        chosen, rejected = pair
        return Example(
            prompt=_write_prompt(rng, kind, topic, value),
            chosen=chosen,
            rejected=rejected,
            reference=chosen,
            extra={"kind": kind, "topic": topic.name},
        )

    def sample_ood(self, rng: random.Random, kind: str) -> Example:
        spec = OOD_CONSTRAINT_KINDS[kind]
        while True:
            topic = rng.choice(OOD_TOPICS)
            value = spec.pick_value(rng, topic)
            pair = spec.make_pair(rng, topic, value)
            if pair is not None:
                break
        chosen, rejected = pair
        return Example(
            prompt=_write_ood_prompt(rng, kind, topic, value),
            chosen=chosen,
            rejected=rejected,
            reference=chosen,
            extra={"kind": kind, "topic": topic.name},
        )

    def judge_text(self, prompt: str, response: str) -> float:
        kind, value = parse_constraint(prompt)
        # Every constraint is on an answer to a request for sentences about the topic. A response of
        # fewer than MIN_ANSWER_WORDS words ("Dogs", "Night Sky", an emoji run) answers none of them,
        # though it has no commas, avoids every word and is under any word limit. Policies that hacked
        # their learned reward models wrote exactly that (docs/benchmarks.md).
        if word_count(response) < MIN_ANSWER_WORDS:
            return 0.0
        return 1.0 if CHECKS[kind](response, value) else 0.0
