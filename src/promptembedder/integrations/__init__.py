"""Bridges to the libraries people already use (sentence-transformers), each optional and imported on demand."""
