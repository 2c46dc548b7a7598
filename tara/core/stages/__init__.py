"""The model stages, one module (or package) each, in data-path order: VAD, endpointing, STT, RAG, LLM, TTS."""
