"""Reusable widgets: image thumbnails, the loss plot, the concept list, the map scatter."""
