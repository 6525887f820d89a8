"""The demo: a whole session against a simulated phone, with a real Debian kernel."""
