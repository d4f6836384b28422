"""The turn pipeline: start reading at turn.handle_turn."""
