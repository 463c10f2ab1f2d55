"""Rule pack versions: sha256 to canonical content, stored on first load."""
