"""Content that flows in: RSS/Atom feeds become news items, iCalendar URLs become meetings."""
