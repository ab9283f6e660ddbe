"""Streamlit glue shared by the pages: session keys, cached backend calls, widgets, charts."""
