"""Subscribing, double opt-in confirmation, preferences and unsubscribing."""
