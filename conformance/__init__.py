"""The sessionspec conformance kit: plug in a backend, get a verdict per behaviour."""
