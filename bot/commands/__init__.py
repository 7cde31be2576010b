"""Commands: the one grammar, `Core.execute` from a command to replies, and the README export."""
