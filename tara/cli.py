"""The ``tara`` command: index, say, chat, analyze, doctor, serve, bench and eval."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the default profile never reaches a model hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from rich.console import Console  # noqa: E402

from tara.core.config import ConfigError, TaraConfig, load_config  # noqa: E402

console = Console(stderr=True)
EVAL_OUT, HELDOUT_OUT = "bench-results/eval", "bench-results/heldout"
ENDPOINTING_OUT = "bench-results/endpointing"


def _config(args: argparse.Namespace) -> TaraConfig:
    overrides = {"rag.kb_dir": str(Path(args.kb).resolve())} if getattr(args, "kb", None) else {}
    return load_config(args.config, **overrides)


def cmd_index(args: argparse.Namespace) -> int:
    from tara.core.stages.rag import RETRIEVERS

    config = _config(args)
    started = time.perf_counter()
    retriever = RETRIEVERS.create(config.rag.backend, config.rag, config.data_path)
    state = "rebuilt" if retriever.rebuilt else "up to date"
    console.print(
        f"index {state}: {len(retriever.documents)} documents from {retriever.kb_dir} "
        f"-> {retriever.index_dir} ({time.perf_counter() - started:.1f}s)"
    )
    for document in retriever.documents:
        console.print(f"  {document.source}: {len(document.text)} characters")
    for problem in retriever.skipped:
        console.print(f"  [yellow]skipped[/] {problem}")
    return 0


def cmd_say(args: argparse.Namespace) -> int:
    from tara.core.audio import write_wav
    from tara.core.concurrency import Compute
    from tara.core.emotion import EmotionSettings
    from tara.core.stages.tts import TTS_BACKENDS, synthesize

    config = _config(args)
    emotion = EmotionSettings.from_preset(args.emotion)
    tts = TTS_BACKENDS.create(config.tts.backend, config.tts, config.data_path, compute=Compute())
    audio = asyncio.run(synthesize(tts, args.text, emotion))
    write_wav(args.output, audio.samples, audio.sample_rate)
    console.print(f"wrote {args.output}: {audio.duration:.2f}s at {audio.sample_rate} Hz ({args.emotion})")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from tara.core.audio import read_audio, write_wav
    from tara.core.emotion import EmotionSettings
    from tara.core.stack import load_stack
    from tara.tools.filechat import converse

    config = _config(args)
    audio = read_audio(args.input)

    async def run():
        stack = await load_stack(config, console=console)
        return await converse(stack, audio, realtime=args.realtime, emotion=EmotionSettings.from_preset(args.emotion))

    turn = asyncio.run(run())
    if args.output and turn.reply is not None:
        write_wav(args.output, turn.reply.samples, turn.reply.sample_rate)
    if args.json:
        print(json.dumps(turn.to_json() | {"reply_wav": args.output}, indent=2))
        return 0
    console.print(f"[bold]you[/]: {turn.transcript}")
    for source in turn.sources:
        console.print(f"  source {source['source']} (score {source['score']:.2f})")
    console.print(f"[bold]tara[/] ({'grounded' if turn.grounded else 'no context'}): {turn.answer}")
    console.print("timings (ms): " + ", ".join(f"{k} {v:.0f}" for k, v in turn.timings_ms.items()))
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from tara.core.audio import PIPELINE_RATE, read_audio
    from tara.core.emotion.prosody import analyze, estimate_emotion

    audio = read_audio(args.input)
    transcript = None
    if not args.no_stt:  # the words give the speaking rate and the cue words
        from tara.core.concurrency import Compute
        from tara.core.stages.stt import STT_BACKENDS

        config = _config(args)
        stt = STT_BACKENDS.create(config.stt.backend, config.stt, config.data_path, compute=Compute())
        transcript = asyncio.run(stt.transcribe(audio)).text.strip()
    features = analyze(audio, PIPELINE_RATE, transcript)
    estimate = estimate_emotion(features, None, transcript)  # one file: no baseline, so the words decide
    if args.json:
        print(
            json.dumps(
                {"file": args.input, "transcript": transcript, "features": features.to_dict(), **estimate.to_dict()},
                indent=2,
            )
        )
        return 0
    if transcript is not None:
        print(f"transcript: {transcript}")
    for name, value in features.to_dict().items():
        print(f"{name}: {'-' if value is None else value}")
    print(f"label: {estimate.label} (confidence {estimate.confidence:.2f})")
    for reason in estimate.reasons:
        print(f"  {reason}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from tara.core.doctor import run_doctor

    return run_doctor(_config(args), console)


def cmd_serve(args: argparse.Namespace) -> int:
    from tara.server.serve import serve

    config = _config(args)
    serve(config, host=args.host, port=args.port)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    if args.heldout:
        from tara.tools.heldout import HeldoutOptions, heldout

        heldout(
            HeldoutOptions(
                split=args.split,
                kbs=args.heldout_kb or [],
                mode=args.mode,
                turns=args.turns,
                callers=args.callers,
                config=args.config,
                out=Path(args.out if args.out != EVAL_OUT else HELDOUT_OUT),
            )
        )
        return 0
    if args.endpointing:
        from tara.tools import endpointing

        report = endpointing.run(_config(args), args.latency_ms)
        out = Path(args.out if args.out != EVAL_OUT else ENDPOINTING_OUT)
        out.mkdir(parents=True, exist_ok=True)
        (out / "endpointing.json").write_text(json.dumps(report, indent=2))
        print(endpointing.markdown(report))
        console.print(f"wrote {out / 'endpointing.json'}")
        return 0
    from tara.core.stack import load_stack
    from tara.tools.evaluate import evaluate, markdown

    config = _config(args)

    async def run() -> dict:
        return await evaluate(await load_stack(config, console=console))

    report = asyncio.run(run())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(report, indent=2))
    (out / "eval.md").write_text(markdown(report) + "\n")
    print(markdown(report))
    console.print(f"wrote {out / 'eval.json'} and {out / 'eval.md'}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from tara.tools.bench import BenchOptions, bench

    sessions = sorted({int(n) for n in args.sessions.split(",")})
    bench(
        BenchOptions(
            turns=args.turns,
            barge_ins=args.barge_ins,
            sessions=sessions,
            turns_per_session=args.turns_per_session,
            soak=args.soak,
            echo_turns=args.echo_turns,
            config=args.config,
            out=Path(args.out),
            wer=args.wer,
            wer_denoise=args.wer_denoise.split(","),
        )
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tara", description="Tara, a local real-time voice agent.")
    parser.add_argument("--config", help="config YAML (default: config/default.yaml or $TARA_CONFIG)")
    commands = parser.add_subparsers(dest="command", required=True)

    index = commands.add_parser("index", help="build or refresh the knowledge-base index")
    index.add_argument("--kb", help="knowledge-base folder (default: rag.kb_dir)")
    index.set_defaults(run=cmd_index)

    say = commands.add_parser("say", help="speak TEXT into a wav file")
    say.add_argument("text")
    say.add_argument("-o", "--output", required=True)
    say.add_argument("--emotion", default="neutral")
    say.set_defaults(run=cmd_say)

    chat = commands.add_parser("chat", help="answer a spoken question from a file, end to end")
    chat.add_argument("--in", dest="input", required=True, help="question audio (wav or anything FFmpeg reads)")
    chat.add_argument("--out", dest="output", help="write the spoken reply here (wav)")
    chat.add_argument("--kb", help="knowledge-base folder (default: rag.kb_dir)")
    chat.add_argument("--json", action="store_true", help="print one JSON object for scripts")
    chat.add_argument("--emotion", default="neutral")
    chat.add_argument("--realtime", action="store_true", help="feed the audio at live-microphone pace")
    chat.set_defaults(run=cmd_chat)

    analyze = commands.add_parser("analyze", help="how a recording sounds: loudness, pitch, pace, pauses, emotion")
    analyze.add_argument("input", help="audio file (wav or anything FFmpeg reads)")
    analyze.add_argument("--json", action="store_true", help="print one JSON object for scripts")
    analyze.add_argument("--no-stt", action="store_true", help="skip transcription (no speaking rate, no cue words)")
    analyze.set_defaults(run=cmd_analyze)

    doctor = commands.add_parser("doctor", help="check models, versions and devices")
    doctor.set_defaults(run=cmd_doctor)

    serve = commands.add_parser("serve", help="run the web server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--kb", help="knowledge-base folder (default: rag.kb_dir)")
    serve.set_defaults(run=cmd_serve)

    evaluation = commands.add_parser(
        "eval", help="accuracy on spoken questions, TTS→STT word error rate, how audible each emotion preset is"
    )
    evaluation.add_argument("--kb", help="knowledge-base folder (default: rag.kb_dir)")
    evaluation.add_argument("--out", default=EVAL_OUT, help="folder for the report (JSON and markdown)")
    evaluation.add_argument(
        "--heldout",
        action="store_true",
        help="the held-out knowledge bases in eval/heldout/, spoken through real WebRTC",
    )
    evaluation.add_argument(
        "--split", choices=["dev", "final"], default="dev", help="held-out split (run final once, at the end)"
    )
    evaluation.add_argument("--heldout-kb", action="append", help="only this held-out knowledge base (repeatable)")
    evaluation.add_argument(
        "--mode",
        choices=["long", "short", "both", "crowd", "typed"],
        default="long",
        help="one long conversation per knowledge base, short ones, or both; crowd: --callers long "
        "conversations at once; typed: the questions typed into an in-process session (no speech: the brain alone)",
    )
    evaluation.add_argument("--callers", type=int, default=4, help="callers talking at once in crowd mode")
    evaluation.add_argument(
        "--endpointing",
        action="store_true",
        help="each endpointing backend on finished and paused spoken requests: silence waited, turns cut off",
    )
    evaluation.add_argument(
        "--latency-ms", type=int, default=0, help="with --endpointing: a pause's transcription takes this much audio"
    )
    evaluation.add_argument("--turns", type=int, default=36, help="turns per held-out knowledge base")
    evaluation.set_defaults(run=cmd_eval)

    bench = commands.add_parser("bench", help="latency through WebRTC at a real caller: table, JSON, PNG chart")
    bench.add_argument("--turns", type=int, default=20, help="spoken turns of one caller")
    bench.add_argument("--barge-ins", type=int, default=3)
    bench.add_argument("--sessions", default="1,2,4", help="concurrency levels, e.g. 1,2,4")
    bench.add_argument("--turns-per-session", type=int, default=2, help="turns of each caller at 2+ sessions")
    bench.add_argument("--soak", type=int, default=0, help="also run this many turns and report RSS growth")
    bench.add_argument(
        "--echo-turns", type=int, default=0, help="also ask this many with Tara's voice replayed into the mic"
    )
    bench.add_argument("--out", default="bench-results/latest", help="folder for report.json and latency.png")
    bench.add_argument("--wer", type=int, default=0, help="also speak this many questions clean and in noise: WER")
    bench.add_argument("--wer-denoise", default="off,rnnoise", help="audio.denoise settings the WER section compares")
    bench.set_defaults(run=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ConfigError, OSError, ValueError) as exc:  # OSError: missing files, a port in use
        console.print(f"[red]error:[/] {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
