"""Meetings, projects and news items: the JSON importer, the queries digests use, the .ics files."""
