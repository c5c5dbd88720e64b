"""train/losses."""
