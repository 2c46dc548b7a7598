"""The conversation engine and everything it runs on, with no web server in it.

- ``stages``: one module per model stage behind a small async interface (VAD, endpointing, STT, RAG, LLM, TTS).
- ``conversation``: one session's turn engine, from microphone audio to the agent's speech.
- ``emotion``: the emotion settings that steer the LLM and TTS, and the user's prosody.
- ``library``: what persists across restarts: the knowledge base and the voice library.
- ``config``, ``registry``, ``stack``, ``concurrency``, ``audio``: configuration, backends by name, the models
  a process shares, the CPU they share, and PCM plumbing.
"""
