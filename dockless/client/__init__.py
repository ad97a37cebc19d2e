"""The one HTTP client of every command that talks to a registry, its token auth, the stored logins."""
