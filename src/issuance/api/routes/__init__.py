"""One router per resource: parse, call one service, serialise."""
