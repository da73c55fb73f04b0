"""The four main screens (Library, Compose, Train, Map) and the dialogs they open."""
