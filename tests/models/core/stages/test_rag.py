import shutil

import pytest

from tara.core.config import RAGConfig
from tara.core.conversation.prompt import PromptBuilder
from tara.core.stages.rag.documents import vocabulary
from tara.core.stages.rag.llamaindex import LlamaIndexRetriever
from tests.conftest import TEST_KB
from tests.pdfs import minimal_pdf


@pytest.fixture
def kb(tmp_path):
    folder = tmp_path / "kb"
    shutil.copytree(TEST_KB, folder)
    (folder / "parking.pdf").write_bytes(
        minimal_pdf("Visitors park for free in the Heron Hill car park behind the dome.")
    )
    return folder


@pytest.fixture
def retriever_for(config, tmp_path):
    def make(kb_dir):
        return LlamaIndexRetriever(config.rag, tmp_path / "data", kb_dir, show_progress=False)

    return make


async def test_retrieves_the_right_passage_with_source_and_score(kb, retriever_for):
    retriever = retriever_for(kb)
    assert {d.source for d in retriever.documents} == {
        "orchid-valley-observatory.md",
        "ferry-timetable.txt",
        "parking.pdf",
    }
    passages = await retriever.retrieve("How much is a ticket for the ferry?")
    assert passages[0].source == "ferry-timetable.txt" and "nine dollars" in passages[0].text
    assert passages[0].score >= passages[-1].score
    pdf = await retriever.retrieve("Where can visitors park their car?")
    assert pdf[0].source == "parking.pdf"


async def test_unrelated_questions_fall_below_the_threshold(kb, retriever_for, config):
    retriever = retriever_for(kb)
    related = await retriever.retrieve("What is the name of the observatory telescope?")
    unrelated = await retriever.retrieve("What is the best recipe for lasagne?")
    assert related[0].score >= config.rag.score_threshold > unrelated[0].score


async def test_index_is_persisted_and_rebuilt_only_when_documents_change(kb, retriever_for):
    first = retriever_for(kb)
    assert first.rebuilt
    assert not retriever_for(kb).rebuilt  # loaded from the data dir
    (kb / "ferry-timetable.txt").write_text("The ferry was replaced by a bridge in 2024. Walking across takes an hour.")
    changed = retriever_for(kb)
    assert changed.rebuilt
    passages = await changed.retrieve("How long does it take to walk across the bridge?")
    assert "bridge" in passages[0].text


async def test_broken_files_are_skipped_and_an_empty_folder_works(config, tmp_path, retriever_for):
    kb = tmp_path / "kb"
    kb.mkdir()
    assert await retriever_for(kb).retrieve("anything") == []
    (kb / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (kb / "ok.txt").write_text("The boathouse opens at dawn.")
    retriever = retriever_for(kb)
    assert [d.source for d in retriever.documents] == ["ok.txt"] and "broken.pdf" in retriever.skipped[0]
    assert (await retriever.retrieve("When does the boathouse open?"))[0].source == "ok.txt"


def test_missing_folder_is_a_clear_error(config, tmp_path):
    with pytest.raises(FileNotFoundError, match="knowledge-base folder not found"):
        LlamaIndexRetriever(config.rag, tmp_path, tmp_path / "absent", show_progress=False)


def test_vocabulary_finds_names():
    from tara.core.stages.rag import Document

    terms = vocabulary(
        [Document("a.md", "The Orchid Valley Observatory has Big Maple. Tickets are sold at Stardust Corner.")]
    )
    assert "Orchid Valley Observatory" in terms and "Big Maple" in terms and "Stardust Corner" in terms
    assert "Tickets" not in terms


def test_prompt_inlines_a_small_kb_for_every_question_and_a_large_one_switches_to_no_context(config):
    from tara.core.stages.rag import Document, Passage

    docs = [Document("a.md", "The ferry costs nine dollars.")]
    builder = PromptBuilder(config.llm, config.rag, docs, lambda text: len(text) // 4)
    assert builder.inline and "nine dollars" in builder.grounded_system
    good = [Passage("The ferry costs nine dollars.", "a.md", 0.8)]
    grounded = builder.build([], "What does the ferry cost?", good, "")
    assert grounded.grounded and grounded.messages[0].content == builder.grounded_system
    weak = [Passage("The ferry costs nine dollars.", "a.md", 0.05)]
    assert builder.build([], "Who runs the ferry?", weak, "").grounded  # a low score says little here
    large = PromptBuilder(
        config.llm, config.rag.model_copy(update={"inline_max_tokens": 0}), docs, lambda text: len(text) // 4
    )
    assert "nine dollars" in large.build([], "What does the ferry cost?", good, "").messages[-1].content
    off_topic = large.build([], "Tell me a recipe.", weak, "Speak in a calm tone.")
    assert not off_topic.grounded and "nine dollars" not in off_topic.messages[0].content
    assert off_topic.messages[-1].content.endswith("(Speak in a calm tone.)")


def test_old_history_is_dropped_a_page_at_a_time_so_the_cached_prefix_survives(config):
    from tara.core.stages.llm import ChatMessage

    builder = PromptBuilder(config.llm, config.rag, [], lambda text: len(text) // 4)
    assert config.llm.history_tokens == 1024

    def exchanges(first: int, last: int) -> list[ChatMessage]:  # ~108 tokens each
        return [
            m
            for i in range(first, last)
            for m in (ChatMessage("user", f"q{i} " + "x" * 200), ChatMessage("assistant", "y" * 200))
        ]

    kept = builder.trim(exchanges(0, 12))  # 12 exchanges are over budget: the first page of 4 goes
    assert kept[0].content.startswith("q4 ") and len(kept) == 16
    assert builder.trim(exchanges(0, 13))[0] == kept[0]  # next turn: same start, the cache still holds it
    assert builder.trim(exchanges(0, 14))[0].content.startswith("q8 ")


def test_exchanges_tara_did_not_answer_stay_out_of_the_prompt(config):
    from tara.core.conversation.guards import NOT_IN_DOCUMENTS
    from tara.core.conversation.phrases import NOT_HEARD_PHRASE
    from tara.core.stages.llm import ChatMessage

    builder = PromptBuilder(config.llm, config.rag, [], lambda text: len(text) // 4)
    history = [
        ChatMessage("user", "Is there parking?"),
        ChatMessage("assistant", NOT_IN_DOCUMENTS),
        ChatMessage("user", "When do you open?"),
        ChatMessage("assistant", "At nine."),
        ChatMessage("user", "Mumble."),
        ChatMessage("assistant", NOT_HEARD_PHRASE),
    ]
    assert [m.content for m in builder.trim(history)] == ["When do you open?", "At nine."]


def test_prompt_puts_retrieved_passages_in_the_question_for_a_large_kb(config):
    from tara.core.stages.rag import Document, Passage

    rag = RAGConfig(**(config.rag.model_dump() | {"inline_max_tokens": 10}))
    builder = PromptBuilder(config.llm, rag, [Document("big.md", "word " * 500)], lambda text: len(text) // 4)
    assert not builder.inline
    prompt = builder.build([], "What does the ferry cost?", [Passage("Nine dollars.", "f.txt", 0.7)], "")
    assert "Nine dollars." in prompt.messages[-1].content and "Nine dollars." not in prompt.messages[0].content


async def test_the_shipped_knowledge_base_reads_every_format(tmp_path):
    from tara.core.config import load_config

    config = load_config()
    retriever = LlamaIndexRetriever(config.rag, tmp_path, show_progress=False)
    sources = {d.source for d in retriever.documents}
    assert {"tara-privacy.pdf", "greenfield-library.txt", "brightline-kettle.md"} <= sources and not retriever.skipped
    passages = await retriever.retrieve("Is my microphone audio saved to disk?")
    assert passages[0].source == "tara-privacy.pdf"
