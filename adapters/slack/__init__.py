"""The Slack front end: `/papers` over HTTP or Socket Mode, OAuth installs, and the Slack poster."""
