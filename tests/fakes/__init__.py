"""Fake provider servers: real HTTP servers on 127.0.0.1 that speak each provider's protocol."""
