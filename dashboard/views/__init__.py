"""One Streamlit script per page; ``dashboard/app.py`` registers them with ``st.navigation``.

Not named ``pages/``: Streamlit treats a folder of that name next to the entry script as an
old-style multipage app, and a deep link such as ``/search`` would then bypass ``st.navigation``.
"""
