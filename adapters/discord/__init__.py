"""The Discord front end: the /papers command group, reply embeds and the daily-post poster."""
