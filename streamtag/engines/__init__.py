"""Engines: a checked `TagJob` / `ListenJob` and what runs them (this process, live input, a Ray cluster)."""
