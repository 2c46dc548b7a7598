"""Who has the floor and which turn is current: the one object where a conversation's turn state changes.

The agent is ``listening``, ``thinking`` (a reply is being written, not heard yet) or ``speaking``. Turn
ids count the user's finished utterances and typed messages; a reply started on a pause (speculation)
or a partial transcript belongs to ``next_turn_id``, the turn that pause may end. The current ``Reply``
is the only one that may be heard; starting another replaces it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tara.core.conversation.events import AgentState

if TYPE_CHECKING:
    from tara.core.conversation.reply import Reply


class ConversationState:
    def __init__(self, on_change: Callable[[AgentState], None]) -> None:
        self.agent = AgentState.LISTENING
        self.turn_id = 0  # the last turn the user finished
        self.reply: Reply | None = None
        self._on_change = on_change  # the session announces the state and retunes the listener

    # ---------------------------------------------------------------- the agent's side

    def think(self) -> None:
        self._become(AgentState.THINKING)

    def speak(self) -> None:
        self._become(AgentState.SPEAKING)

    def listen(self) -> None:
        self._become(AgentState.LISTENING)

    @property
    def speaking(self) -> bool:
        return self.agent is AgentState.SPEAKING

    @property
    def thinking(self) -> bool:
        return self.agent is AgentState.THINKING

    # ---------------------------------------------------------------- turns

    def end_user_turn(self) -> int:
        """The user finished speaking or typed a message: that is a new turn."""
        self.turn_id += 1
        return self.turn_id

    @property
    def next_turn_id(self) -> int:
        """The turn the user's current words would make, once they finish."""
        return self.turn_id + 1

    def take_floor(self, reply: Reply) -> Reply | None:
        """``reply`` is now the current one; returns the one it replaces (interrupted by the caller)."""
        previous, self.reply = self.reply, reply
        return previous

    @property
    def replying(self) -> bool:
        return self.reply is not None and not self.reply.done

    def speculating(self, end: int | None = None) -> bool:
        """Whether a reply started on a pause (the one at stream sample ``end``) is running unheard."""
        reply = self.reply
        return (
            reply is not None
            and not reply.done
            and not reply.committed
            and reply.turn.speculative_end is not None
            and (end is None or reply.turn.speculative_end == end)
        )

    def _become(self, state: AgentState) -> None:
        if state is not self.agent:
            self.agent = state
            self._on_change(state)
