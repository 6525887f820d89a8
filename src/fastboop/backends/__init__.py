"""Backends execute a session's effects: the standard one, and the seams it plugs into."""
