"""Daily Papers bot: the platform-neutral core (store, arXiv gateway, commands, README export)."""
