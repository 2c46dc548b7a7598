"""Tara, a local real-time voice agent.

- ``tara.cli``: the ``tara`` command, the one place that puts the parts together.
- ``tara.core``: the conversation engine and its model stages; it imports nothing from the rest.
- ``tara.server``: the aiohttp app, WebRTC peers and the REST API, built on ``tara.core``.
- ``tara.tools``: benchmarks, evaluations, the scripted caller and file chat, built on both.
"""
