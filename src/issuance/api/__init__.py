"""HTTP adapter (FastAPI): D1's inbound API, our extensions, errors mapped in one place."""
