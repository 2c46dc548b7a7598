from tara.core.stages.stt.guards import Decoding, compression_ratio, is_silence, rejection

PROMPT = "The conversation mentions Harbour Museum, Ines Berg, Greenfield Public Library Maker Space, Tuesday."


def test_the_prompt_read_back_is_rejected():
    echo = Decoding("The conversation mentions Harbour Museum, Ines Berg, Tuesday, Saturday.")
    assert rejection(echo, PROMPT) == "the recogniser read back its prompt"
    assert rejection(Decoding("Harbour Museum, Ines Berg, Greenfield"), PROMPT) is not None


def test_a_question_naming_the_documents_is_no_echo():
    assert rejection(Decoding("Who is Ines Berg at the Harbour Museum?"), PROMPT) is None
    assert rejection(Decoding("Is the Greenfield Public Library Maker Space open?"), PROMPT) is None


def test_loops_are_rejected():
    assert rejection(Decoding("Saturday, Saturday, Saturday, Saturday."), None) == "the recogniser repeated itself"
    assert rejection(Decoding("I want to, I want to, I want to go."), None) == "the recogniser repeated itself"
    assert compression_ratio("thank you " * 30) > 2.4
    assert rejection(Decoding("Where was it owned? Where was it owned?"), None) == "the recogniser repeated itself"
    # a letter looped with hyphens (heard on "Who is the hygienist?" in babble)
    assert rejection(Decoding("Vesma, Hyde Nes, N-N-N-N-N-N-N-N-N"), None) == "the recogniser repeated itself"
    assert rejection(Decoding("No, no, I meant the museum."), None) is None
    assert rejection(Decoding("Is it open? Is it open on Sunday?"), None) is None  # three words said twice


def test_a_doubtful_decoding_is_rejected_and_silence_is_no_failure():
    assert rejection(Decoding("Where is the fun?", avg_logprob=-1.4), None) == "the recogniser was unsure"
    assert rejection(Decoding("Where is the museum?", avg_logprob=-0.3), None) is None
    assert is_silence(Decoding("you", avg_logprob=-1.5, no_speech_prob=0.9))
    assert not is_silence(Decoding("Where is the museum?", avg_logprob=-0.3, no_speech_prob=0.9))
