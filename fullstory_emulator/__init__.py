"""fullstory-emulator: a local, offline emulator of FullStory's Segment Export API."""

__version__ = "0.1.0"
