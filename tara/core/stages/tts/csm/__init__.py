"""Sesame CSM text to speech (GPU profile). Nothing is imported here: torch, torchtune and moshi load
only when ``tts.backend: csm`` selects ``tara.core.stages.tts.csm.backend``."""
