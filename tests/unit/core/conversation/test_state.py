"""The turn state: named transitions, announced once each, and which reply holds the floor."""

from tara.core.conversation.events import AgentState
from tara.core.conversation.state import ConversationState


class FakeReply:
    def __init__(self, done=False, committed=False, speculative_end=None):
        self.done, self.committed = done, committed
        self.turn = type("T", (), {"speculative_end": speculative_end})()


def test_each_change_of_state_is_announced_once():
    seen = []
    state = ConversationState(seen.append)
    state.think()
    state.think()
    state.speak()
    state.listen()
    assert seen == [AgentState.THINKING, AgentState.SPEAKING, AgentState.LISTENING]
    assert not state.speaking and not state.thinking


def test_turn_ids_count_finished_turns_and_the_next_one_is_the_words_being_heard():
    state = ConversationState(lambda _: None)
    assert state.next_turn_id == 1
    assert state.end_user_turn() == 1 and state.next_turn_id == 2


def test_only_a_running_uncommitted_reply_on_a_pause_is_speculation():
    state = ConversationState(lambda _: None)
    assert not state.speculating() and not state.replying
    first = FakeReply(speculative_end=1600)
    assert state.take_floor(first) is None  # pyright: ignore[reportArgumentType] - a stand-in reply
    assert state.speculating() and state.speculating(1600) and not state.speculating(3200)
    first.committed = True
    assert not state.speculating()
    typed = FakeReply()
    assert state.take_floor(typed) is first and state.replying and not state.speculating()  # pyright: ignore[reportArgumentType]
    typed.done = True
    assert not state.replying
