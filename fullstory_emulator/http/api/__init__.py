"""HTTP handlers, one module per FullStory API area; each exposes a plain list `routes`."""
