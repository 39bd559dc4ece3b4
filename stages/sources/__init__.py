"""Where movie records come from: the bundled sample and the TMDB API."""
