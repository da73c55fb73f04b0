"""ticraft: textual inversion, and a home for what it learns."""
