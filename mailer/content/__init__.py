"""Meetings, projects and news items: the JSON importer, the queries digests use, archive and delete, the public
item pages and .ics files."""
