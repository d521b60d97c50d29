"""Copying objects: pure planning apart from the calls that carry it out."""
