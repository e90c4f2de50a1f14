"""Embedded default only: the development SMTP server and the pages that show what it caught."""
