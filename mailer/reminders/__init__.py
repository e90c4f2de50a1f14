"""Meeting reminders: one email some days before each upcoming meeting, to the subscribers who asked for it."""
