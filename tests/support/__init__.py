"""Helpers the tests share: real PostgreSQL, real HTTP servers, real signatures."""
