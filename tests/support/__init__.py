"""Shared test helpers: real artifacts fetched and cached, never faked."""
