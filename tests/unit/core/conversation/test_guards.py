import pytest

from tara.core.conversation.guards import (
    ALL_RIGHT,
    CUT_NOT_IN_DOCUMENTS,
    GOODBYE,
    HELLO,
    NOT_IN_DOCUMENTS,
    KnownFacts,
    RepetitionGuard,
    ReplyCheck,
    numbers_in,
    refers_back,
    restates_question,
)


def test_numbers_are_read_from_digits_and_words_alike():
    assert numbers_in("It opens at nine thirty.") == numbers_in("It opens at 9:30.") == {"9", "30"}
    assert {"3.5", "3", "50"} <= numbers_in("It costs $3.50.")
    assert "142" in numbers_in("Call 555-0142.")
    assert numbers_in("one of the best rooms") == set()
    assert "1200" in numbers_in("It holds 1,200 people.")
    assert numbers_in("The number is four seven eight.") == {"4", "7", "8"}


def test_an_invented_number_is_found_and_a_stated_one_passes():
    known = KnownFacts(["Entry costs 12 euros; children 6.50.", "Open 9:00 to 17:00."])
    assert known.invented("A tour costs 45 euros.", "How much is a tour?") == {"45"}
    assert not known.invented("Entry is twelve euros, six fifty for children.", "How much?")
    assert not known.invented("No, it opens at nine, not at 8.", "Does it open at 8?")  # the question's own
    assert known.invented("It opens at 9.", "Hello!", grounded=False) == {"9"}  # no documents: all invented
    assert not known.invented("It is open from nine to five.", "When is it open?")  # 17:00


def test_a_time_the_documents_imply_is_no_invention():
    known = KnownFacts(["Open 10:00 to 17:00.", "Last entry is forty-five minutes before closing."])
    assert not known.invented("The last entry is at 16:15.", "When is the last entry?")
    assert not known.invented("The last entry is at a quarter past 4, 4:15.", "When is the last entry?")
    assert known.invented("The last entry is at 16:20.", "When is the last entry?") == {"20"}


def test_a_phone_number_read_digit_by_digit_matches_the_documents():
    known = KnownFacts(["Call 555-0142."])
    assert not known.invented("Call five five five, zero one four two.", "What is the number?")
    assert known.invented("Call 555-0199.", "What is the number?") == {"199"}


def test_restating_the_question_is_told_apart_from_answering_it():
    question = "How long is the warranty on the kettle?"
    assert restates_question(question, "How long is the warranty on the kettle?")
    assert restates_question(question, "The warranty on the kettle.")
    assert not restates_question(question, "The warranty on the kettle is two years.")
    assert not restates_question(question, "The warranty on the kettle,")  # a clause: its sentence goes on
    assert not restates_question("Is it open on Mondays?", "Yes, it is open on Mondays.")
    assert restates_question("When does the museum open on Tuesday?", "The museum opens on Tuesday.")
    assert not restates_question("When does the museum open on Tuesday?", "The museum opens at ten on Tuesdays.")


def test_repetition_is_a_repeated_sentence_or_a_phrase_said_three_times():
    guard = RepetitionGuard()
    assert not guard.repeats("It opens at nine.")
    assert not guard.repeats("Entry is free.")
    assert guard.repeats("It opens at nine.")
    guard = RepetitionGuard()  # a phrase across pieces too short to be sentences
    assert not any(guard.repeats(piece) for piece in ["the big", "hall and", "the big", "hall and", "the big"])
    assert guard.repeats("hall and")


def test_a_reply_check_drops_parrots_stops_loops_and_replaces_invented_numbers():
    check = ReplyCheck("Who is the curator?", KnownFacts(["The curator is Ines Berg, phone 478."]), grounded=True)
    assert check.judge("Who is the curator?") == (None, False) and check.parroted and check.said_nothing
    assert check.judge("The curator is Ines Berg.") == ("The curator is Ines Berg.", False)
    assert check.judge("Call 479.") == (NOT_IN_DOCUMENTS, True)
    assert check.judge("The curator is Ines Berg.") == (None, True)


def test_a_cut_after_a_spoken_clause_reads_as_a_correction_of_it():
    check = ReplyCheck("What is the phone number?", KnownFacts(["Phone 020 7946 0318."]), grounded=True)
    assert check.judge("The phone number is") == ("The phone number is", False)  # out already, by its deadline
    assert check.judge("020 7946 0319.") == (CUT_NOT_IN_DOCUMENTS, True)  # "The phone number is … sorry, I don't know"


def test_an_opening_of_the_question_s_own_words_is_too_soon_to_speak():
    check = ReplyCheck("Is the bakery open on Saturday?", KnownFacts(["On Saturday the bakery is open 9 to 5."]), True)
    assert check.premature("The bakery is open") and check.premature("Yes, it is")  # a parrot, or a yes
    assert not check.premature("The bakery opens at 9") and not check.premature("On Saturday,")
    assert check.premature("No,")
    assert check.judge("The bakery is open on Saturday.") == ("Yes, the bakery is open on Saturday.", False)
    assert not check.premature("It is")  # a later sentence: the answer is out
    check = ReplyCheck("How much is the late fee per day?", KnownFacts(["Late fee: 20 cents a day."]), True)
    assert check.premature("How much is the late")  # the question said back
    assert not check.premature("The late fee per day is")  # most often an answer on its way


def test_a_reply_check_drops_its_instructions_read_out():
    persona = (
        "You are Tara, a voice assistant: answer in short sentences of plain text: no lists, no markdown, no emojis."
    )
    check = ReplyCheck("Is there a restaurant on the roof?", KnownFacts(["A cafe on the ground floor."]), True, persona)
    assert check.judge("No lists, no markdown, no emojis.") == (None, False) and check.said_nothing
    answer = "No, but there is a cafe on the ground floor."
    assert check.judge(answer) == (answer, False)


def test_a_name_no_document_holds_is_invented():
    known = KnownFacts(["Dr. Ines Berg sees patients on Mondays. Hygienist: Tom Reyes."])
    assert known.invented("On Mondays, ask for Dr. Patel.", "Who sees patients?") == {"Patel"}
    assert not known.invented("Dr. Berg sees patients on Mondays, and Tom Reyes cleans.", "Who?")
    assert not known.invented("Sorry, I'm Tara, and it is Friday.", "Hi!", grounded=False)
    assert not known.invented("Hello Anna, nice to meet you.", "Hi, I am Anna.", grounded=False)


def test_a_reply_nothing_in_the_documents_backs_is_i_dont_know():
    facts = KnownFacts(
        [
            "The Ivy Cafe on the ground floor serves lunch. Dogs are welcome in the garden.",
            "Dr. Varga is our dentist. Fillings cost 65 pounds.",
        ]
    )
    unsupported = [
        ("Is there a restaurant on the roof?", "Yes, there is a restaurant on the roof."),
        ("Do you offer sedation for nervous patients?", "Yes, we offer sedation for nervous patients."),
        ("Do you do braces for adults?", "No, we do not do braces for adults."),
        ("What is the dentist's favourite colour?", "The dentist's favourite colour is white."),
    ]
    for question, reply in unsupported:
        assert ReplyCheck(question, facts, grounded=True).judge(reply) == (NOT_IN_DOCUMENTS, True), reply
    # what the documents do mention, an answer that adds what they say, small talk: left alone
    backed = [
        ("Can I bring my dogs?", "Yes, dogs are welcome in the garden."),
        ("Is there a cafe?", "Yes, there is a cafe."),
        ("Is there a restaurant on the roof?", "No, but the Ivy Cafe on the ground floor serves lunch."),
        ("How much is a filling?", "A filling costs sixty-five pounds."),
        ("Thanks, that was helpful!", "You're welcome! Have a lovely day."),
        ("Tell me everything about the ferry, in great detail.", "Here is everything about the ferry."),
        ("Tell me everything about the ferry, in great detail.", "Sure, here is everything about the ferry."),
        ("Tell me about the ferry's colour.", "Yes, the ferry's colour is bright green."),
    ]
    for question, reply in backed:
        assert ReplyCheck(question, facts, grounded=True).judge(reply) == (reply, False), reply
    assert ReplyCheck("Is there a spa?", facts, grounded=False).judge("Yes, there is a spa.")[0] == NOT_IN_DOCUMENTS
    assert ReplyCheck("Hi, how are you today?", facts, grounded=False).judge("I'm well today, thanks!")[1] is False
    later = ReplyCheck("What is the dentist's favourite colour?", facts, grounded=True)  # only the answer is judged
    assert later.judge("Dr. Varga is our dentist.")[1] is False
    assert later.judge("The dentist's favourite colour is white.")[1] is False


def test_an_answer_beside_a_yes_or_no_question_is_i_dont_know():
    facts = KnownFacts(
        ["Bikes come with helmets and locks. We deliver in town. Children under 16 ride free.", "Tandem, 30 euros."]
    )
    beside = ReplyCheck("Is there parking for the bikes?", facts, True)
    assert beside.judge("Helmets and locks are included free.") == (NOT_IN_DOCUMENTS, True)
    # a word of the question, or its derivation, or a yes or a no: an answer
    for question, reply in [
        ("Do you deliver?", "Delivery is free in town."),
        ("Is it free for my child?", "Children under 16 ride free."),
        ("Are helmets included?", "Helmets and locks are included free."),
        ("Can I rent a tandem?", "No, only city bikes."),
    ]:
        assert ReplyCheck(question, facts, True).judge(reply) == (reply, False), reply
    assert ReplyCheck("When do you open?", facts, True).judge("Helmets are free.")[1] is False  # not a yes or no


def test_a_yes_or_no_question_said_back_as_a_statement_is_a_yes_judged_like_one():
    facts = KnownFacts(["The bakery is open Tuesday to Saturday. Dogs may sit on the terrace."])
    check = ReplyCheck("Is the bakery open on Saturday?", facts, True)
    assert check.judge("The bakery is open on Saturday.") == ("Yes, the bakery is open on Saturday.", False)
    # a yes about what no document mentions is still not said, nor a no said as a statement
    roof = ReplyCheck("Can I bring my dog on the roof?", facts, True)
    assert roof.judge("You can bring your dog on the roof.") == (NOT_IN_DOCUMENTS, True)
    slide = ReplyCheck("Is there a water slide?", facts, True)  # "has" adds nothing of its own
    assert slide.judge("It has a water slide.") == (NOT_IN_DOCUMENTS, True)
    spa = ReplyCheck("Is there a spa on the roof?", facts, True)
    assert spa.judge("There is no spa on the roof.") == (NOT_IN_DOCUMENTS, True)
    asked_back = ReplyCheck("Is the bakery open on Saturday?", facts, True)
    assert asked_back.judge("Is the bakery open on Saturday?") == (None, False) and asked_back.parroted


def test_a_question_about_the_conversation_is_not_about_the_documents():
    facts = KnownFacts(["Tara helps you with the library. The library is closed on Sundays."])
    assert facts.asked_about("Is the library open on Sundays?")
    for question in ["Can you hear me?", "Are you there?", "Can you help me?", "Do you understand?"]:
        assert not facts.asked_about(question), question
        assert ReplyCheck(question, facts, True).judge("Of course, go ahead.") == ("Of course, go ahead.", False)


def test_a_bare_i_dont_know_to_words_that_ask_nothing_is_small_talk():
    facts = KnownFacts(["The library opens at 9."])
    for said, reply in [
        ("Perfect, see you on Saturday. Bye!", GOODBYE),
        ("Hi there, business Mike Rentals.", HELLO),
        ("Okay.", ALL_RIGHT),
    ]:
        assert ReplyCheck(said, facts, True).judge("I don't know.") == (reply, True), said
    assert ReplyCheck("Okay.", facts, True).judge("Sorry, I don't know that.") == (ALL_RIGHT, True)
    # a piece the clock cut before the sentence ended: said as small talk, and the rest is not said
    assert ReplyCheck("One shot of aviation spring.", facts, True).judge("Sorry, I don't know") == (ALL_RIGHT, True)
    # a question gets its honest "I don't know"
    assert ReplyCheck("Who is the mayor?", facts, True).judge("I don't know.") == ("I don't know.", False)
    assert ReplyCheck("Okay.", facts, True).judge("Great, see you!") == ("Great, see you!", False)


def test_a_start_that_may_become_a_bare_i_dont_know_waits_for_the_sentence_to_words_that_ask_nothing():
    """The clock cut "I don't | know." once, and "I don't know." went out as the answer to a greeting."""
    facts = KnownFacts(["The library opens at 9."])
    greeting = ReplyCheck("Hi there, business Mike Rentals.", facts, True)
    assert greeting.premature("I don't") and greeting.premature("Sorry, I")
    assert not greeting.premature("Hello, how")
    assert not ReplyCheck("Who is the mayor?", facts, True).premature("I don't")  # a question gets its "I don't know"


def test_a_goodbye_said_back_is_no_parrot():
    facts = KnownFacts(["The library opens at 9."])
    check = ReplyCheck("Perfect! See you on Saturday, bye!", facts, True)
    assert check.judge("See you") == ("See you", False)  # the first piece, cut by the clock
    assert check.judge("on Saturday, bye!") == ("on Saturday, bye!", False) and not check.cut_short
    assert ReplyCheck("Tell me about the library.", facts, True).judge("Tell me about the library.") == (None, False)


def test_a_model_s_own_don_t_know_is_said_as_tara_s():
    facts = KnownFacts(["The pool opens at 7:00."])
    for reply in ("No information provided.", "Nothing about parking.", "There is no information on that."):
        assert ReplyCheck("Where can I park?", facts, grounded=True).judge(reply) == (NOT_IN_DOCUMENTS, True)
    assert ReplyCheck("Is it free?", facts, grounded=True).judge("No, it costs money.")[0] == "No, it costs money."
    check = ReplyCheck("Where can I park?", facts, grounded=True)  # its start sent by the clock
    assert check.judge("There is") == ("There is", False)
    assert check.judge("no information on that.") == (CUT_NOT_IN_DOCUMENTS, True)
    # a coding model's refusal of a misheard question, whole or after the clock sent its start
    refused = "I'm sorry, but I can't assist with that."
    assert ReplyCheck("Let it open on my own game.", facts, True).judge(refused) == (NOT_IN_DOCUMENTS, True)
    check = ReplyCheck("Let it open on my own game.", facts, True)
    assert check.judge("I'm sorry, but") == ("I'm sorry, but", False)
    assert check.judge("I can't assist with that request.") == (CUT_NOT_IN_DOCUMENTS, True)


def test_foreign_words_are_the_meaningful_ones_no_document_has():
    facts = KnownFacts(["Dr. Okafor sees children. He works Tuesday to Friday."])
    assert facts.foreign("Dusty, where it's on home base.") == {"dusty", "home", "base"}  # no "where", no "s"
    assert facts.foreign("Does he work on Mondays, R.L.?") == {"monday"}
    assert facts.foreign("Can you hear me?") == set()  # the conversation's own words


@pytest.mark.parametrize(
    ("question", "points_back"),
    [
        ("How long do they last?", True),
        ("And for one hour?", True),
        ("What is the deposit for it?", True),
        ("Which days does she work?", True),
        ("Who is the chief curator?", False),
        ("Is there a dinosaur skeleton?", False),  # "there" of a fact, not a place said before
    ],
)
def test_a_question_that_points_back_at_the_conversation_is_told_apart(question, points_back):
    assert refers_back(question) is points_back
