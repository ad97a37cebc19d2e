"""Who may do what: credentials, tokens, sessions, sign-in throttling, the access decision."""
