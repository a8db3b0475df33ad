"""HTTP handlers: parse and validate input, call a service, shape JSON."""
