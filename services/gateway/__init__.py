"""Gateway: the one public door. Holds accounts, issues access tokens, scopes each call to the
caller's office and routes it to the service that holds the data, over HTTPS."""
