"""Who is calling and what they may do: credentials, JWT access tokens, grants."""
