"""Export files: what to select (spec), which columns (fields), rows, and the gzip stream."""
