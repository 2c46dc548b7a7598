"""Checks on a reply, piece by piece, before it is spoken: a small model's typical failures.

A 0.5B model, asked about documents, sometimes restates the question instead of answering it,
repeats itself in a loop, or states a number (a price, a time, a phone number) that no document
holds. Each is caught on the piece about to be voiced, so the user never hears it:

- ``restates_question``: a finished sentence that adds no word of its own to the question, or to
  the instructions it was given ("No lists, no markdown, no emojis.": its own prompt read out);
- ``RepetitionGuard``: a sentence said before in this reply, or a phrase said three times;
- ``KnownFacts``: a number or a name that is neither in the documents nor in the question (a time they
  imply is theirs: "45 minutes before closing");
- ``answers_beside``: an answer to a yes-or-no question that shares no word with it.

A yes-or-no question said back as a statement is no parrot but a yes (``affirmed``), and a bare "I don't
know." to words that ask nothing ("See you on Saturday, bye!") is small talk (``small_talk_reply``).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable

from text_to_num import alpha2digit

from tara.core.conversation.barge_in import normalise
from tara.core.conversation.text import NUMBER_WORDS

log = logging.getLogger(__name__)

# Words that carry no answer of their own ("yes" and "no" do, so they are not here).
FUNCTION_WORDS = frozenset(
    "a an the is are was were be it its it's of to in on at for and or do does did can could would will you i "
    "me my your we our what when where how who whom which why that this there these those about with from "
    "please tell know has have had".split()
)
# what a question about the conversation itself is made of: "Can you help me?", "Did you understand?"
CONVERSATION_WORDS = frozenset("help hear understand ask talk speak repeat say said here there sorry".split())
SENTENCE_END = (".", "!", "?")
NOT_IN_DOCUMENTS = "Sorry, I don't know that. It isn't in my documents."
# the same, after a clause of the sentence it replaces was already said ("The phone number is …")
CUT_NOT_IN_DOCUMENTS = "… sorry, I don't know that. It isn't in my documents."
# what a bare "I don't know." to words that ask nothing becomes (see ``small_talk_reply``)
GOODBYE = "Goodbye, talk to you soon!"
HELLO = "Hello! What can I do for you?"
ALL_RIGHT = "All right."
FAREWELL_WORDS = frozenset("bye goodbye cheers see later night".split())
GREETING_WORDS = frozenset("hi hello hey morning afternoon evening".split())
# a model's own way of saying it does not know ("No information provided.", or, the answer started as
# "The documents say", "… nothing about parking."): said as Tara's don't-know phrase
_NO_INFORMATION = re.compile(
    r"^(?:(?:there is|there's) )?(?:no (?:information|details?|mention)\b|nothing (?:about|on|regarding)\b)",
    re.IGNORECASE,
)
# a coding model's refusal: its answer to a transcript that makes no sense ("Let it open on my own game.")
_REFUSAL = re.compile(
    r"^(?:(?:i'm|i am) )?(?:sorry,? )?(?:but )?i (?:can't|cannot|am unable to) (?:assist|help) with\b", re.I
)
_BARE_DONT_KNOW = [  # "(Sorry,) I don't know (that).", as ``_words`` splits it
    [*sorry, "i", *dont, "know", *that]
    for sorry in ([], ["sorry"])
    for dont in (["don", "t"], ["do", "not"])
    for that in ([], ["that"])
]
LOOP_NGRAM = 4  # a phrase of this many words ...
LOOP_REPEATS = 3  # ... said this many times in one reply is a loop
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_CLOCK = re.compile(r"\b(\d{1,2})[:.](\d{2})\b")
_MINUTES = re.compile(r"\b(\d+)\s*(?:minutes|mins?)\b")
TITLES = ("Dr.", "Mr.", "Mrs.", "Ms.", "St.", "Prof.")
_CAPITALISED = re.compile(r"\b[A-Z][a-z]+\b")
# Capitalised words any reply may use: the agent's name, days, months.
COMMON_NAMES = frozenset(
    "tara i monday tuesday wednesday thursday friday saturday sunday january february march april may june "
    "july august september october november december sorry english".split()
)


def words_of(text: str) -> list[str]:
    """Lower-case words and numbers ("check-up" is "check" and "up"), as the guards and whisper's
    document-word count compare them."""
    return normalise(text).replace("-", " ").split()


def restates_question(question: str, sentence: str) -> bool:
    """Whether ``sentence`` (a whole sentence of the reply) only says the question back.

    Judged on finished sentences only: the clause "The warranty on the kettle," adds nothing yet, but
    its sentence will ("... is two years.").
    """
    words = words_of(sentence)
    if len(words) < 3 or not sentence.rstrip().endswith(SENTENCE_END):
        return False
    return only_asked(question, words)


def only_asked(question: str, words: Iterable[str], also: frozenset[str] = frozenset()) -> bool:
    """Whether ``words`` add nothing to ``question`` but function words (and ``also``)."""
    asked = {stem(word) for word in words_of(question)}
    return all(word in FUNCTION_WORDS or word in also or stem(word) in asked for word in words)


# words that answer rather than inform: "Yes, we do." / "No, it is not." add nothing to the question
ANSWER_WORDS = frozenset(
    "yes yeah sure certainly of course no not don t doesn isn aren can we you they i us there here".split()
)
YES_OR_NO = frozenset("yes yeah no not".split())
YES_NO_QUESTION = frozenset("is are was were do does did can could will would has have may should".split())
WH_QUESTION = frozenset("what who whom whose which where when how why".split())


def asks_yes_or_no(question: str) -> bool:
    """Whether the last sentence of ``question`` asks for a yes or a no: "Hi! Is this the bike rental?"."""
    sentences = [part for part in re.split(r"[.!?]+", question) if part.strip()]
    words = words_of(sentences[-1]) if sentences else []
    return bool(words) and words[0] in YES_NO_QUESTION


def affirmed(question: str, sentence: str) -> str | None:
    """A yes-or-no ``question`` said back as a statement is its answer yes: "Is the bakery open on
    Saturday?" → "The bakery is open on Saturday." → "Yes, the bakery is open on Saturday."; None for
    anything else (the question asked back, or not a yes-or-no question)."""
    words = words_of(sentence)
    if not asks_yes_or_no(question) or sentence.rstrip().endswith("?") or not words or words[0] in YES_NO_QUESTION:
        return None
    first = sentence[:1].lower() if words[0] in FUNCTION_WORDS else sentence[:1]  # not "Dr." or a name
    return f"Yes, {first}{sentence[1:]}"


# words that point back at what was said before: "How long do they last?", "What is the deposit for it?"
REFERRING_WORDS = frozenset("it its they them their that those this these he him his she her".split())


def refers_back(question: str) -> bool:
    """Whether ``question`` points back at the conversation ("And for one hour?", "How tall is it?")."""
    words = words_of(question)
    return bool(words) and (words[0] == "and" or not REFERRING_WORDS.isdisjoint(words))


def asks(utterance: str) -> bool:
    words = words_of(utterance)
    return "?" in utterance or (bool(words) and words[0] in WH_QUESTION | YES_NO_QUESTION)


def is_greeting_or_farewell(utterance: str) -> bool:
    """Words that greet or take leave and ask nothing ("Perfect, see you on Saturday. Bye!"): said back
    ("See you on Saturday!"), they are the polite answer, not a parrot."""
    return not asks(utterance) and bool((FAREWELL_WORDS | GREETING_WORDS) & set(words_of(utterance)))


def may_be_bare_dont_know(head: str) -> bool:
    """Whether ``head``, the start of a reply, may yet become a bare "(Sorry,) I don't know." ("I don't")."""
    words = words_of(head)
    return bool(words) and any(words == whole[: len(words)] for whole in _BARE_DONT_KNOW)


def small_talk_reply(utterance: str, sentence: str) -> str | None:
    """What to say instead of a bare "I don't know." to words that ask nothing: told "Perfect, see you on
    Saturday. Bye!", a small model held to its documents says "I don't know."; None for anything else."""
    if asks(utterance) or words_of(sentence) not in _BARE_DONT_KNOW:
        return None
    words = set(words_of(utterance))
    if FAREWELL_WORDS & words:
        return GOODBYE
    return HELLO if GREETING_WORDS & words else ALL_RIGHT


def answers_beside(question: str, sentence: str) -> bool:
    """Whether a finished ``sentence`` opening the answer to a yes-or-no ``question`` is about
    something else: no yes or no, and not one word of the question's own ("Do you have parking for
    cars?" → "Helmets and locks are included free."). A small model asked about what the documents
    lack states the nearest fact they hold."""
    words = words_of(sentence)
    if not asks_yes_or_no(question) or not sentence.rstrip().endswith(SENTENCE_END) or not words:
        return False
    said = _content(sentence)
    return words[0] not in YES_OR_NO and not any(_related(asked, word) for asked in _content(question) for word in said)


def _related(a: str, b: str) -> bool:
    """One word, or one's derivation: "deliver" and "delivery", "child" and "children", "photos" and "photography"."""
    shorter = min(len(a), len(b))
    return a == b or (shorter >= 5 and a[:shorter] == b[:shorter])


def _content(text: str) -> set[str]:
    """The stems of ``text``'s words that carry meaning: no function, answer or number words."""
    return {
        stem(word)
        for word in words_of(text)
        if word not in FUNCTION_WORDS and word not in ANSWER_WORDS and word not in NUMBER_WORDS and not word.isdigit()
    }


def stem(word: str) -> str:
    """ "opens" and "open", "tours" and "tour" alike: "When does it open?" → "It opens." says nothing new.
    (A plural or third-person "s" is all a parrot changes; a stemmer library would be more than this needs.)"""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


class RepetitionGuard:
    """Notices a reply going round in circles, so its generation can be cut."""

    def __init__(self) -> None:
        self._sentences: set[str] = set()
        self._ngrams: Counter[tuple[str, ...]] = Counter()
        self._tail: list[str] = []  # the last words, so phrases spanning two pieces count too

    def repeats(self, piece: str) -> bool:
        """Record ``piece``; True when it repeats what this reply already said."""
        words = words_of(piece)
        key = " ".join(words)
        if len(words) >= 3 and key in self._sentences:
            return True
        self._sentences.add(key)
        stream = self._tail + words
        start = max(0, len(self._tail) - LOOP_NGRAM + 1)
        for index in range(start, len(stream) - LOOP_NGRAM + 1):
            gram = tuple(stream[index : index + LOOP_NGRAM])
            self._ngrams[gram] += 1
            if self._ngrams[gram] >= LOOP_REPEATS:
                return True
        self._tail = stream[-(LOOP_NGRAM - 1) :]
        return False


def numbers_in(text: str) -> set[str]:
    """Every number in ``text``, written as digits or as words, in a canonical form.

    "Nine thirty" and "9:30" both give {"9", "30"}; "$3.50" gives {"3.5", "3", "50"}, so "three fifty"
    and "three dollars fifty" match it; "0142" gives "142". (``text2num`` reads number words.)
    """
    found: set[str] = set()
    for match in _NUMBER.finditer(alpha2digit(text, "en")):
        token = match.group(0)
        parts = re.split(r"[.,:]", token)
        if re.fullmatch(r"\d{1,3}(?:,\d{3})+", token):  # 1,200
            parts = ["".join(parts)]
        found.update(str(int(part)) for part in parts)
        if re.fullmatch(r"\d+\.\d+", token):
            found.add(token.rstrip("0").rstrip(".") if "." in token else token)
    return found


def reckoned_times(texts: list[str]) -> set[str]:
    """The clock times the documents imply, as ``numbers_in`` gives them: a stated time give or take a
    stated number of minutes ("Open 10:00 to 17:00", "last entry is 45 minutes before closing": 16:15)."""
    times = {int(h) * 60 + int(m) for text in texts for h, m in _CLOCK.findall(text) if int(h) < 24 and int(m) < 60}
    spans = {int(n) for text in texts for n in _MINUTES.findall(alpha2digit(text, "en"))}
    moments = {time + sign * span for time in times for span in spans for sign in (-1, 1)}
    return set().union(*(numbers_in(f"{m // 60}:{m % 60:02d}") for m in moments if 0 <= m < 24 * 60))


class KnownFacts:
    """The numbers and names the documents state: a reply's number or name found nowhere there (nor
    in the question) was made up."""

    ALWAYS = frozenset({"0", "1"})  # "one of them", "a 1-minute walk": too common to judge

    def __init__(self, texts: Iterable[str]) -> None:
        texts = list(texts)
        stated = set().union(*(numbers_in(text) for text in texts)) | reckoned_times(texts)
        # said another way: "17:00" is "five" in the afternoon, "555-0142" is read digit by digit
        afternoon = {str(int(n) - 12) for n in stated if n.isdigit() and 13 <= int(n) <= 23}
        digits = {digit for n in stated for digit in n if digit.isdigit()}
        self.numbers: frozenset[str] = frozenset(stated | afternoon | digits)
        self.words: frozenset[str] = frozenset(word for text in texts for word in words_of(text))
        self._stems = frozenset(map(stem, self.words))

    def asked_about(self, question: str) -> bool:
        """Whether ``question`` names something the documents mention, not only the conversation
        itself ("Can you hear me?", "Are you there?")."""
        return bool((_content(question) - CONVERSATION_WORDS) & self._stems)

    def foreign(self, text: str) -> set[str]:
        """The words of ``text`` that carry meaning and that no document has (nor the conversation's own);
        not the letters an apostrophe or initials leave ("dentist's", "R.L.")."""
        return {word for word in _content(text) - CONVERSATION_WORDS - self._stems if len(word) > 1}

    def unsupported(self, question: str, sentence: str) -> bool:
        """Whether a finished ``sentence`` of a reply about ``question`` has nothing from the documents:

        - a yes or a no that says the question back (as one, or as a statement: "There is no spa."),
          when the question names something no document mentions ("Do you offer sedation?" → "Yes, we
          offer sedation."; not "Here is everything about the
          ferry.", which starts no yes or no);
        - an answer about the thing asked whose every new word is in no document ("What is the
          dentist's favourite colour?" → "The dentist's favourite colour is white.").

        Numbers are left to ``invented``; a sentence about something else (small talk) to the model.
        """
        opener = next(iter(words_of(question)), "")
        if not sentence.rstrip().endswith(SENTENCE_END) or opener not in YES_NO_QUESTION | WH_QUESTION:
            return False  # ("Tell me everything about the ferry." asks for no yes, no and no one fact)
        asked, said = _content(question), _content(sentence)
        added = said - asked
        if not added:  # a yes or a no, said as one or as a statement ("There is no roof restaurant.")
            return bool(said) and opener in YES_NO_QUESTION and bool(asked - self._stems)
        return opener in WH_QUESTION and len(said & asked) >= 2 and not added & self._stems

    def invented(self, piece: str, question: str, grounded: bool = True) -> set[str]:
        """Numbers and names in ``piece`` found neither in the documents (when answering from them)
        nor in the question."""
        numbers = self.ALWAYS | numbers_in(question) | (self.numbers if grounded else frozenset())
        words = COMMON_NAMES | set(words_of(question)) | (self.words if grounded else frozenset())
        return (numbers_in(piece) - numbers) | {name for name in names_in(piece) if name.lower() not in words}


def names_in(text: str) -> list[str]:
    """Capitalised words that do not start a sentence: "Ask Dr. Patel at the front desk." → ["Patel"]."""
    names = []
    for match in _CAPITALISED.finditer(text):
        before = text[: match.start()].rstrip()
        starts_sentence = not before or (before.endswith(SENTENCE_END) and not before.endswith(TITLES))
        if not starts_sentence:
            names.append(match.group(0))
    return names


class ReplyCheck:
    """The guards one reply's pieces pass, in order, before they are voiced."""

    def __init__(self, question: str, facts: KnownFacts, grounded: bool, instructions: str = "") -> None:
        self.question, self.facts, self.grounded = question, facts, grounded
        self.instructions = instructions  # the persona part of the system prompt (not the documents)
        self._repetition = RepetitionGuard()
        self._sentence = ""  # the sentence being said: its first clause may already be out
        self.parroted = False  # a sentence was dropped for saying the question back
        self.cut_short = (
            False  # ... after its first words were said, and nothing said since: the reply must not end there
        )
        self._said_head = ""  # those first words
        self._asks = asks(question)  # (a question, not words that ask nothing: judged once)
        self.said_nothing = True
        self._opening = True  # judging the reply's first sentence, the one that answers (or not)

    def premature(self, head: str) -> bool:
        """Whether ``head``, a start of the sentence being said that the clock would release before the
        sentence ends, must wait for more words, so that the guards judge the opening sentence whole:

        - the question said back, word for word so far ("When does the museum");
        - to a yes-or-no question, nothing but its own words and a yes or no ("The bakery is open",
          "Yes, we offer"): the question turned into a statement (a yes), or a yes that no document
          backs. A clause without a yes or no leads on to the answer ("On Saturday, …").

        To a wh-question an opening of its words is most often the answer's start ("The late fee per
        day is 20 cents."): it goes out, and if the sentence turns out to say the question back, the
        reply ends on "… sorry, I don't know that" rather than on its first words (``cut_short``).
        """
        words = words_of(f"{self._sentence} {head}")
        if not self._opening:
            return False
        if not self._asks and may_be_bare_dont_know(f"{self._sentence} {head}"):
            return True  # "I don't" may become a bare "I don't know.", which is said as small talk
        if not asks_yes_or_no(self.question):
            return words == words_of(self.question)[: len(words)]
        if not only_asked(self.question, words, also=ANSWER_WORDS):
            return False
        return not head.rstrip().endswith((",", ";", ":")) or not YES_OR_NO.isdisjoint(words)

    def judge(self, piece: str) -> tuple[str | None, bool]:
        """What to say for ``piece`` (None: nothing) and whether the reply must stop there."""
        if self._repetition.repeats(piece):
            return None, True
        head, sentence = self._sentence, f"{self._sentence} {piece}".strip()
        self._sentence = "" if piece.endswith(SENTENCE_END) else sentence
        if self._opening and sentence == piece and (instead := small_talk_reply(self.question, sentence)):
            # and nothing after it: the clock may have cut "Sorry, I don't know | that. It isn't in my documents."
            self.said_nothing, self._opening = False, False
            return instead, True
        if self._opening and any(no.match(sentence.replace("\u2019", "'")) for no in (_NO_INFORMATION, _REFUSAL)):
            self.said_nothing = False  # the model's own "no information", or its refusal: Tara's "don't know"
            return self._cut(sentence, piece, "the model has no answer"), True
        if restates_question(self.question, sentence) and not is_greeting_or_farewell(self.question):
            yes = affirmed(self.question, sentence) if sentence == piece and self._opening else None
            if yes is None:
                log.info("reply dropped %r (the question said back)", sentence)
                self.parroted = True
                if head:
                    self.cut_short, self._said_head = True, head
                return None, False
            piece = sentence = yes  # and judged as that answer
        if self.instructions and restates_question(self.instructions, sentence):
            return None, False  # its instructions read out: nothing the user asked for
        self.said_nothing = False
        if invented := self.facts.invented(piece, self.question, self.grounded):
            return self._cut(sentence, piece, f"no document states {', '.join(sorted(invented))}"), True
        if self._opening and self.facts.unsupported(self.question, sentence):  # with documents or none
            # "Yes, there is a restaurant on the roof": no document says so
            return self._cut(sentence, piece, "nothing in the documents backs it"), True
        if self._opening and answers_beside(self.question, sentence) and self.facts.asked_about(self.question):
            # "Do you have parking for cars?" → "Helmets and locks are included free."
            return self._cut(sentence, piece, "it answers beside the question"), True
        self._opening = self._opening and not piece.endswith(SENTENCE_END)
        self.cut_short = False
        return piece, False

    def go_on(self) -> str:
        """Before a second try at a reply cut short: the words of it already said, which the model goes
        on from, and which the guards judge its next words with (as the start of their sentence)."""
        self._sentence = self._said_head if self.cut_short else ""
        return self._sentence

    def _cut(self, sentence: str, piece: str, why: str) -> str:
        """What replaces ``piece`` of ``sentence``, which the reply stops at."""
        log.info("reply cut at %r (%s)", sentence, why)
        return NOT_IN_DOCUMENTS if sentence == piece else CUT_NOT_IN_DOCUMENTS
