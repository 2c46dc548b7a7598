"""A heard turn is never silent, never stuck, never a parrot: the session's reply rules, with scripted models."""

import time

import pytest

from tara.core.conversation.events import AgentText, ErrorEvent, Sources, TurnMetrics
from tara.core.conversation.guards import CUT_NOT_IN_DOCUMENTS, NOT_IN_DOCUMENTS
from tara.core.conversation.phrases import FAILED_PHRASE, HOLDING_PHRASE, NOT_HEARD_PHRASE
from tara.core.conversation.prompt import INSIST, YES_NO_ANSWER_START
from tara.core.conversation.session import Session
from tara.core.conversation.sink import BufferSink
from tara.core.conversation.turn import Turn, TurnClock
from tara.core.stages.llm import ChatMessage
from tara.core.stages.rag import Document
from tara.core.stages.stt import Transcript
from tests.fakes import ScriptedLLM, ScriptedSTT, ToneTTS, events_until, fake_stack, words

MUSEUM = [
    Document(
        "museum.md", "The Harbour Museum opens at 9 and closes at 17. Entry costs 12 euros. The curator is Ines Berg."
    )
]


def said(events) -> list[str]:
    return [e.text for e in events if isinstance(e, AgentText)]


async def ask(stack, text: str, session: Session | None = None) -> list:
    """A typed turn; the events up to its metrics (in a session of its own unless one is given)."""
    own = session is None
    session = session or Session(stack, BufferSink())
    session.say_text(text)
    try:
        return await events_until(session, TurnMetrics, timeout=20)
    finally:
        if own:
            await session.close()


async def test_a_reply_without_a_sentence_end_is_heard_in_pieces_while_it_is_written(config):
    run_on = (
        "the museum has rooms with old maps and ships and paintings of the harbour from long ago and "
        "a small cafe where visitors sit by tall windows while guides tell stories about sailors who "
        "built boats that crossed cold seas in winter storms"
    )  # no full stop, no comma
    llm = ScriptedLLM(words(run_on), delay=0.05)
    events = await ask(fake_stack(config, llm, documents=MUSEUM), "Tell me about the museum?")
    pieces = said(events)
    assert len(pieces) >= 3, pieces
    assert " ".join(pieces).split() == run_on.split()  # nothing lost, nothing added
    metrics = events[-1].stages
    assert metrics["first_sentence"] < metrics["first_token"] + 1000  # not held back until the end


async def test_a_stalled_model_gets_a_holding_phrase_then_the_answer(config):
    llm = ScriptedLLM([2.6, *words("It opens at 9.")])
    events = await ask(fake_stack(config, llm, documents=MUSEUM), "When does the museum open?")
    assert said(events) == [HOLDING_PHRASE, "It opens at 9."]
    assert "holding" in events[-1].stages


async def test_a_question_said_back_after_its_first_words_were_spoken_never_ends_the_reply_mid_sentence(config):
    parrot = ["The", " museum", " opens", " on", 1.2, " Tuesday."]  # so slow that its start goes out
    llm = ScriptedLLM(parrot)
    events = await ask(fake_stack(config, llm, documents=MUSEUM), "When does the museum open on Tuesday?")
    assert said(events) == ["The museum opens", CUT_NOT_IN_DOCUMENTS]  # (asked again, it said it back again)


async def test_a_reply_cut_short_by_the_question_said_back_is_asked_again_from_the_words_already_said(config):
    parrot = ["The", " museum", " opens", " on", 1.2, " Tuesday."]
    llm = ScriptedLLM(parrot, words(" on Tuesday at 9 and closes at 17."))
    events = await ask(fake_stack(config, llm, documents=MUSEUM), "When does the museum open on Tuesday?")
    assert said(events) == ["The museum opens", "on Tuesday at 9 and closes at 17."]
    again = llm.prompts[1]
    assert INSIST in again[-2].content and again[-1] == ChatMessage("assistant", "The museum opens")
    assert llm.params[1].second_try and not llm.params[0].second_try  # (the accurate model, where there are two)


async def test_the_holding_phrase_counts_from_when_the_voice_stopped_not_from_the_end_of_turn(config):
    """A turn declared over a second after the user's last word (a trailing "and") waits no longer for it."""
    session = Session(fake_stack(config, ScriptedLLM([5.0, *words("It opens at 9.")]), documents=MUSEUM), BufferSink())
    started = time.perf_counter()
    clock = TurnClock(speech_stopped=started - 1.5)  # the user stopped 1.5 s ago; the turn ends now
    session._reply(Turn(1, "When does the museum open?", clock), committed=True)
    events = await events_until(session, AgentText, timeout=5)
    assert said(events) == [HOLDING_PHRASE]
    assert time.perf_counter() - started < 1.5  # 2 s after the voice stopped, not 2 s after the turn ended
    await session.close()


async def test_a_quick_reply_gets_no_holding_phrase(config):
    events = await ask(
        fake_stack(config, ScriptedLLM(words("It opens at 9.")), documents=MUSEUM), "When does the museum open?"
    )
    assert said(events) == ["It opens at 9."]


async def test_a_looping_reply_is_cut_and_its_generation_stopped(config):
    llm = ScriptedLLM(words("It opens at 9. " * 12))
    events = await ask(fake_stack(config, llm, documents=MUSEUM), "When does the museum open?")
    assert said(events) == ["It opens at 9."]
    assert llm.closed_early == 1


async def test_a_phrase_said_over_and_over_is_cut(config):
    llm = ScriptedLLM(words("Tickets, tickets and more tickets and more tickets and more tickets and more tickets"))
    events = await ask(fake_stack(config, llm, documents=MUSEUM), "How much are tickets?")
    assert "more tickets and more tickets and more" not in " ".join(said(events))


async def test_a_reply_that_says_the_question_back_is_asked_again_insisting(config):
    llm = ScriptedLLM(words("Who is the curator of the museum?"), words("The curator is Ines Berg."))
    events = await ask(fake_stack(config, llm, documents=MUSEUM), "Who is the curator of the museum?")
    assert said(events) == ["The curator is Ines Berg."]
    assert INSIST in llm.prompts[1][-1].content and INSIST not in llm.prompts[0][-1].content


async def test_an_answer_that_agrees_with_the_question_is_no_parrot(config):
    llm = ScriptedLLM(words("Yes, the museum opens at 9."))
    events = await ask(fake_stack(config, llm, documents=MUSEUM), "Does the museum open at 9?")
    assert said(events) == ["Yes, the museum opens at 9."]


async def test_a_yes_or_no_question_gets_the_documents_fact_first(config):
    llm = ScriptedLLM(words(" that the museum closes at 17."), words("It opens at 9."))
    stack = fake_stack(config, llm, documents=MUSEUM)
    events = await ask(stack, "Hello! Is the museum open at 18?")
    assert said(events) == ["The museum closes at 17."]  # the model's words after the start it was given
    assert llm.prompts[0][-1] == ChatMessage("assistant", YES_NO_ANSWER_START)
    await ask(stack, "When does the museum open?")
    await ask(stack, "Can you hear me?")
    # only a yes or a no about the documents is started for the model
    assert llm.prompts[1][-1].role == llm.prompts[2][-1].role == "user"


async def test_a_yes_or_no_question_said_back_as_a_statement_is_a_yes(config):
    llm = ScriptedLLM(words(" the museum opens at 9."))
    events = await ask(fake_stack(config, llm, documents=MUSEUM), "Does the museum open at 9?")
    assert said(events) == ["Yes, the museum opens at 9."]
    assert len(llm.prompts) == 1  # no parrot: not asked again


async def test_a_number_no_document_holds_is_not_said(config):
    llm = ScriptedLLM(words("A guided tour costs 45 euros. Book it at the desk."))
    events = await ask(fake_stack(config, llm, documents=MUSEUM), "How much is a guided tour of the museum?")
    assert said(events) == [NOT_IN_DOCUMENTS]
    assert llm.closed_early == 1


async def test_numbers_from_the_documents_pass_in_words_or_digits(config):
    llm = ScriptedLLM(words("Entry costs twelve euros, and it opens at nine."))
    events = await ask(fake_stack(config, llm, documents=MUSEUM), "How much does the museum cost?")
    assert " ".join(said(events)) == "Entry costs twelve euros, and it opens at nine."


async def test_a_reply_with_nothing_to_say_says_it_does_not_know(config):
    events = await ask(fake_stack(config, ScriptedLLM(["  ", "\n"]), documents=MUSEUM), "Who built the museum?")
    assert said(events) == [NOT_IN_DOCUMENTS]


async def test_a_model_failing_mid_turn_says_so_and_the_session_goes_on(config):
    llm = ScriptedLLM([RuntimeError("llama.cpp died")], words("It opens at 9."))
    stack = fake_stack(config, llm, documents=MUSEUM)
    session = Session(stack, BufferSink())
    events = await ask(stack, "When does the museum open?", session)
    assert any(isinstance(e, ErrorEvent) for e in events)
    assert said(events) == [FAILED_PHRASE]
    assert said(await ask(stack, "When does the museum open?", session)) == ["It opens at 9."]
    await session.close()


async def test_a_follow_up_is_looked_up_with_the_question_before_it(config):
    llm = ScriptedLLM(words("It opens at 9."), words("Entry costs 12 euros."))
    stack = fake_stack(config, llm, documents=MUSEUM)
    session = Session(stack, BufferSink())
    await ask(stack, "When does the Harbour Museum open?", session)
    events = await ask(stack, "And how much is that?", session)
    queries = stack.retriever.queries  # pyright: ignore[reportAttributeAccessIssue] - the fake records them
    assert queries[-1] == "When does the Harbour Museum open? And how much is that?"
    assert next(e for e in events if isinstance(e, Sources)).grounded
    await session.close()


async def test_a_question_that_points_back_names_the_question_it_follows(config):
    llm = ScriptedLLM(words("It opens at 9."), words("You're welcome!"), words("Entry costs 12 euros."))
    stack = fake_stack(config, llm, documents=MUSEUM)
    session = Session(stack, BufferSink())
    await ask(stack, "When does the Harbour Museum open?", session)
    await ask(stack, "Thanks.", session)  # asks nothing: not the question followed
    await ask(stack, "How much does it cost?", session)
    assert llm.prompts[-1][-1].content == 'Following up on "When does the Harbour Museum open?": How much does it cost?'
    await ask(stack, "Who is the curator?", session)  # points at nothing before it
    assert llm.prompts[-1][-1].content == "Who is the curator?"
    await session.close()


async def test_document_questions_see_only_the_last_exchanges(config):
    llm = ScriptedLLM(words("It opens at 9."))
    stack = fake_stack(config, llm, documents=MUSEUM)
    session = Session(stack, BufferSink())
    for _ in range(6):
        await ask(stack, "When does the Harbour Museum open?", session)
    history = [m for m in llm.prompts[-1][1:-1] if m.role == "user"]
    assert 1 <= len(history) <= config.llm.grounded_history_exchanges
    await session.close()


@pytest.mark.parametrize("rejected", ["the recogniser read back its prompt", "the recogniser was unsure"])
async def test_speech_the_recogniser_did_not_trust_is_met_with_a_request_to_repeat(config, voice, rejected):
    from tara.tools.filechat import feed

    stt = ScriptedSTT(Transcript("", 2.0, 0.1, rejected=rejected))
    llm = ScriptedLLM(words("It opens at 9."))
    tts = ToneTTS()
    session = Session(fake_stack(config, llm, stt=stt, documents=MUSEUM, tts=tts), BufferSink())
    await feed(session, voice("When does the museum open?"), realtime=False)
    events = await events_until(session, TurnMetrics, timeout=20)
    assert said(events) == [NOT_HEARD_PHRASE]
    assert not llm.prompts and not session.history  # no question was made of it
    await session.close()
