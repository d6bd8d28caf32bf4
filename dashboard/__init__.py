"""The Streamlit dashboard: widgets return plain values, ``compd_core`` does the work, views draw.

``app.py`` is the entry point (``compd dashboard`` serves it); ``views/`` holds one script per
page, ``components/`` the views they share, and ``jobs.py`` the searches running off the script
thread.
"""
