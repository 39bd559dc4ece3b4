"""What every command shares: entry-point plumbing, params, atomic writers, the movie schema."""
