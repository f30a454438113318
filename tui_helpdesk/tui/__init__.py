"""The Textual front end: screens, widgets and the live refresh. It reads through services only."""
