"""The emulator's own endpoints under /__emulator/, kept off FullStory's paths."""
