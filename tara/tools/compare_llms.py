"""Compare the bundled GGUF models on the shipped knowledge base: accuracy and speed, same prompts.

    .venv/bin/python -m tara.tools.compare_llms [--models qwen2.5-coder-0.5b qwen2.5-coder-1.5b smollm2-135m]

Each question runs through the real retrieval and prompt builder (system prefix cached, as in a
session). Answers are graded automatically: document questions must contain the fact, questions the
documents cannot answer must get a "don't know" reply, small talk must not.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tara.core.concurrency import Compute  # noqa: E402
from tara.core.config import load_config  # noqa: E402
from tara.core.conversation.prompt import PromptBuilder  # noqa: E402
from tara.core.conversation.text import SentenceChunker  # noqa: E402
from tara.core.stages.llm import GenerationParams  # noqa: E402
from tara.core.stages.llm.llamacpp import LlamaCppLLM  # noqa: E402
from tara.core.stages.llm.settings import LlamaCppSettings  # noqa: E402
from tara.core.stages.rag import RETRIEVERS  # noqa: E402

DONT_KNOW = re.compile(
    r"\b(don't|do not|not sure|no information|cannot|can't|unable|sorry|not (?:have|know|available|mentioned|provided))\b",
    re.I,
)
QUESTIONS: list[tuple[str, str, list[str]]] = [
    ("fact", "How much water does the Brightline kettle hold?", ["1.7"]),
    ("fact", "How long is the warranty on the kettle?", ["two years", "2 years"]),
    ("fact", "How often should I descale the kettle in hard water areas?", ["four weeks", "4 weeks"]),
    ("fact", "What temperature is best for green tea?", ["80"]),
    ("fact", "What is the support phone number for the kettle?", ["0800"]),
    ("fact", "When does the library open on Saturday?", ["10"]),
    ("fact", "How many items can I borrow from the library at once?", ["twelve", "12"]),
    ("fact", "How much is the late fee per item per day?", ["20 cents", "twenty cents", "0.20"]),
    ("fact", "Is the library open on Sundays?", ["closed", "no", "not open"]),
    ("fact", "How do I start Tara?", ["make run"]),
    ("unknown", "What is the price of the Brightline kettle?", []),
    ("unknown", "Who is the head librarian at Greenfield?", []),
    ("unknown", "What is the wifi password of the library?", []),
    ("unknown", "What is the phone number of the city hospital?", []),
    ("unknown", "Who won the football match yesterday?", []),
    ("chat", "Hi there, how are you today?", []),
    ("chat", "Thanks, that was helpful!", []),
]


def grade(kind: str, answer: str, expected: list[str]) -> float:
    if kind == "fact":
        return float(any(e.lower() in answer.lower() for e in expected))
    if kind == "unknown":
        return float(bool(DONT_KNOW.search(answer)))
    return float(bool(answer.strip()) and not DONT_KNOW.search(answer))


async def measure(model: str) -> dict:
    config = load_config(**{"llm.model": f"bundled:{model}"})
    assert isinstance(config.llm, LlamaCppSettings), "compare_llms compares bundled llama.cpp models"
    retriever = RETRIEVERS.create(config.rag.backend, config.rag, config.data_path, show_progress=False)
    started = time.perf_counter()
    llm = LlamaCppLLM(config.llm, config.data_path, Compute())
    load_s = time.perf_counter() - started
    prompts = PromptBuilder(config.llm, config.rag, retriever.documents, llm.count_tokens)
    await llm.warm_up(prompts.warm_up_prefixes())
    params = GenerationParams(config.llm.temperature, config.llm.top_p, config.llm.max_tokens)
    first_tokens, first_sentences, rates, score, rows = [], [], [], 0.0, []
    for kind, question, expected in QUESTIONS:
        prompt = prompts.build([], question, await retriever.retrieve(question), "")
        chunker, text, tokens = SentenceChunker(), "", 0
        t0 = time.perf_counter()
        first_token = first_sentence = None
        async for delta in llm.stream(prompt.messages, params):
            first_token = first_token or time.perf_counter() - t0
            tokens += 1
            text += delta
            if chunker.push(delta) and first_sentence is None:
                first_sentence = time.perf_counter() - t0
        total = time.perf_counter() - t0
        first_sentence = first_sentence or total
        points = grade(kind, text, expected)
        score += points
        first_tokens.append(first_token or total)
        first_sentences.append(first_sentence)
        if tokens > 4:
            rates.append((tokens - 1) / max(1e-3, total - (first_token or 0)))
        rows.append((points, kind, question, text.strip()))
    return {
        "model": model,
        "file_mb": round(llm.model_path.stat().st_size / 1e6),
        "load_s": round(load_s, 1),
        "first_token_p50_s": round(statistics.median(first_tokens), 2),
        "first_sentence_p50_s": round(statistics.median(first_sentences), 2),
        "decode_tok_s": round(statistics.median(rates), 1) if rates else None,
        "score": f"{score:g}/{len(QUESTIONS)}",
        "rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
        "answers": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["qwen2.5-coder-0.5b"])
    parser.add_argument("--show-answers", action="store_true")
    args = parser.parse_args()
    for model in args.models:  # one process per model keeps RSS figures honest: run them separately
        result = asyncio.run(measure(model))
        answers = result.pop("answers")
        print(" | ".join(f"{k}={v}" for k, v in result.items()), flush=True)
        if args.show_answers:
            for points, kind, question, text in answers:
                print(f"  [{points:g}] {kind:7} {question} -> {text}")


if __name__ == "__main__":
    main()
