"""The feed: :func:`~tickactors._feed.feed.open_feed` and what it owns (the user's intent,
the table of connection slots, the iterators), built on the actors below it."""
