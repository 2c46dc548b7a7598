"""Building the LLM prompt so that llama.cpp's prefix cache hits as often as possible.

Layout: ``[system prompt + knowledge] [history ...] [this question]``. The system part never changes
between turns, and only the new question (plus a style note) is appended, so each turn's prompt
processing covers a few dozen new tokens. A small knowledge base is placed whole in the system
prompt (processed once, at warm-up); a large one contributes retrieved passages to the question.
A small knowledge base answers every question: how close a question's words come to a passage's
says little about whether the documents answer it ("Who is the head mechanic?" scored 0.07, "What is
your address?" 0.14, while "Is there a dinosaur skeleton?", which no document answers, scored 0.32).
With a large one, a question whose passages score under ``rag.score_threshold`` gets a system prompt
*without* documents instead, so the model cannot borrow facts from unrelated passages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from tara.core.config import RAGConfig
from tara.core.conversation.guards import KnownFacts, asks, asks_yes_or_no, refers_back
from tara.core.conversation.phrases import NO_ANSWERS
from tara.core.stages.llm import ChatMessage
from tara.core.stages.llm.settings import LLMSettings
from tara.core.stages.rag import Document, Passage

HISTORY_PAGE = 4  # exchanges dropped together when the history outgrows its budget
GROUNDED_HISTORY_PAGE = 2  # the same for the few exchanges a document question sees
INSIST = "(Answer this from the documents, in your own words; do not repeat the question.)"
FOLLOW_UP = 'Following up on "{previous}": {question}'

GROUNDED_RULES = (
    "Answer the user's question using only the facts in the documents below. If they do not contain "
    "the answer, say you don't know."
)
NO_CONTEXT_RULES = (
    "You have no documents that cover this message. Small talk and greetings are fine. If the user asks "
    "for facts, products, numbers or instructions, say plainly that you don't know that; never guess or "
    "make up an answer."
)


# Example exchanges after the system prompt (cached with it): small models follow shown behaviour
# far better than described behaviour.
NO_CONTEXT_EXAMPLES = (
    ChatMessage("user", "What is the phone number of the post office?"),
    ChatMessage("assistant", "Sorry, I don't know that. It isn't in my documents."),
    ChatMessage("user", "Hi! How are you?"),
    ChatMessage("assistant", "I'm great, thanks for asking! What can I do for you?"),
    ChatMessage("user", "Who is the manager of the city museum?"),
    ChatMessage("assistant", "Sorry, I don't know that. It isn't in my documents."),
    ChatMessage("user", "How much does a bus ticket to the airport cost?"),
    ChatMessage("assistant", "Sorry, I don't know that. It isn't in my documents."),
)


# A small model answers a yes-or-no question "Yes", nearly whatever the documents say, and then writes
# their fact: "Is the library open on Sundays?" → "Yes, the library is closed on Sundays." Started
# with these words, it writes the fact first, and the fact answers: "… the library is closed on
# Sundays." (Qwen2.5 1.5B, 20 yes-or-no questions on four documents: 18 right against 13; a spoken
# instruction to the same effect changed nothing.) The words are the model's, never spoken. Not for
# a question about the conversation ("Are you there?"): the documents then say something beside it.
YES_NO_ANSWER_START = "The documents say"


@dataclass(frozen=True)
class Prompt:
    messages: list[ChatMessage]
    grounded: bool
    answer_start: str = ""  # the reply's first words, written for the model and not spoken
    spoken_start: str = ""  # the reply's first words, spoken already (a second try goes on from them)

    def chat(self) -> list[ChatMessage]:
        """What the LLM reads: the messages, and the started answer as an unfinished assistant message."""
        start = self.spoken_start or self.answer_start
        return [*self.messages, ChatMessage("assistant", start)] if start else self.messages


class PromptBuilder:
    def __init__(
        self,
        llm_config: LLMSettings,
        rag_config: RAGConfig,
        documents: list[Document],
        count_tokens: Callable[[str], int],
    ) -> None:
        self.llm_config, self.rag_config = llm_config, rag_config
        self.count_tokens = count_tokens
        knowledge = "\n\n".join(f"[{d.source}]\n{d.text}" for d in documents if d.text)
        self.inline = bool(knowledge) and count_tokens(knowledge) <= rag_config.inline_max_tokens
        base = llm_config.system_prompt
        if self.inline:
            self.grounded_system = f"{base}\n{GROUNDED_RULES}\n\nDocuments:\n{knowledge}"
        else:
            self.grounded_system = f"{base}\n{GROUNDED_RULES}"
        self.no_context_system = f"{base}\n{NO_CONTEXT_RULES}"
        self.known_facts = KnownFacts([d.text for d in documents])

    def warm_up_prefixes(self) -> list[list[ChatMessage]]:
        """The stable prefixes a turn can start from, each with a throwaway question, to prime the cache
        at start (a small knowledge base never uses the one without documents)."""
        kinds = (True,) if self.inline else (True, False)
        return [[*self._prefix(grounded), ChatMessage("user", "Hello.")] for grounded in kinds]

    def _prefix(self, grounded: bool) -> list[ChatMessage]:
        if grounded:  # (examples here made small models refuse answerable questions)
            return [ChatMessage("system", self.grounded_system)]
        return [ChatMessage("system", self.no_context_system), *NO_CONTEXT_EXAMPLES]

    def is_relevant(self, passages: list[Passage]) -> bool:
        return bool(passages) and passages[0].score >= self.rag_config.score_threshold

    def relevant(self, passages: list[Passage]) -> list[Passage]:
        """The passages an answer may draw on (and name as its sources)."""
        return [p for p in passages if p.score >= self.rag_config.score_threshold]

    def build(
        self, history: list[ChatMessage], question: str, passages: list[Passage], style: str, careful: bool = True
    ) -> Prompt:
        """The prompt for ``question``; ``careful``: for a model that reads prompt forms a small one
        misreads (``LLM.writes_carefully``)."""
        grounded = self.inline or self.is_relevant(passages)
        user = self.followed_up(history, question) if grounded and careful else question
        if grounded and not self.inline:
            context = "\n".join(f"[{p.source}] {p.text}" for p in self.relevant(passages))
            user = f"Documents:\n{context}\n\nQuestion: {user}"
        if style:
            user = f"{user}\n({style})"
        messages = [*self._prefix(grounded), *self.trim(history, grounded), ChatMessage("user", user)]
        started = grounded and asks_yes_or_no(question) and self.known_facts.asked_about(question)
        return Prompt(messages, grounded, YES_NO_ANSWER_START if started else "")

    def followed_up(self, history: list[ChatMessage], question: str) -> str:
        """``question``, naming the question it follows when it points back ("How long do they last?").

        The history holds that question, but Qwen2.5 1.5B reads the documents more than the history:
        after "When do the free guided tours start?", "How long do they last?" got the sign-language
        tours, and with "Following up on …" the free tours' 50 minutes. On the held-out dev set's 19
        questions that point back it fixed that answer, made two more complete and broke none. The 0.5B
        takes the named question for the one to answer (2 fixed, 7 broken, one of them said back): it
        gets the question alone (``careful``).
        """
        if not (self.llm_config.follow_up_context and asks(question) and refers_back(question)):
            return question
        previous = self.question_followed(history)
        return FOLLOW_UP.format(previous=previous, question=question) if previous else question

    def question_followed(self, history: list[ChatMessage]) -> str | None:
        """What a follow-up follows: the last user turn that asked something ("Thanks!" in between is
        skipped), among the exchanges a document question sees."""
        recent = [m.content for m in history if m.role == "user"][-self.llm_config.grounded_history_exchanges :]
        return next((said for said in reversed(recent) if asks(said)), None)

    def trim(self, history: list[ChatMessage], grounded: bool = False) -> list[ChatMessage]:
        """The most recent exchanges within ``llm.history_tokens``, dropped a page at a time; a
        document question sees only the last ``llm.grounded_history_exchanges`` or so.

        Dropping the oldest exchange every turn would change the prompt right after the cached system
        part on every turn once the budget is reached, so each turn would re-read the whole history.
        Old exchanges go in pages counted from the start of the conversation, so the cached prefix
        stays valid for some turns between drops. Exchanges Tara did not answer ("I don't know", "say
        it again") are left out: they tell nothing, and a run of them made the model answer "No, you
        don't know." to questions the documents answer. Document questions keep little history: twenty
        exchanges in, a small model borrows numbers from old answers instead of reading the documents.
        """
        exchanges = [
            history[i : i + 2]
            for i in range(0, len(history) - 1, 2)
            if history[i].role == "user"
            and history[i + 1].role == "assistant"
            and history[i + 1].content not in NO_ANSWERS
        ]
        costs = [sum(self.count_tokens(m.content) + 4 for m in exchange) for exchange in exchanges]
        start = 0
        while sum(costs[start:]) > self.llm_config.history_tokens:
            start += HISTORY_PAGE
        excess = len(exchanges) - start - self.llm_config.grounded_history_exchanges
        if grounded and excess > 0:
            start += -(-excess // GROUNDED_HISTORY_PAGE) * GROUNDED_HISTORY_PAGE
            start = min(start, len(exchanges) - 1)  # the last exchange stays: "And how much is that?"
        return [message for exchange in exchanges[start:] for message in exchange]


def insisting(prompt: Prompt, said: str = "") -> Prompt:
    """``prompt`` once more, telling the model to answer rather than restate the question; ``said``: the
    answer's words already spoken, which it goes on from (started afresh, it would say them twice)."""
    *head, question = prompt.messages
    again = replace(prompt, messages=[*head, ChatMessage("user", f"{question.content}\n{INSIST}")])
    return replace(again, answer_start="", spoken_start=said) if said else again
