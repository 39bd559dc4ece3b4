"""The TMDB API v3 client, its on-disk cache and the collection it drives."""
