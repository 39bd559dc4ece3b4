"""The TMDB API v3 source: client, discovery, details, changes, cache and the collection."""
