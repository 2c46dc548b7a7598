"""One conversation: hearing the user, deciding a turn, and speaking one reply at a time."""
