"""Streamlit-side helpers shared by the pages: translations, sidebar, session state, code panel."""
