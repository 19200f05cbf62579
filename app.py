"""Model lifecycle console: `streamlit run app.py`.

Entry point only: page config, navigation, sidebar. Pages live in pages/ and call lifecycle/.
"""

import streamlit as st

from ui import common, identity

st.set_page_config(
    page_title="Model lifecycle console",
    page_icon="🩺",  # an emoji favicon is drawn locally; a :material/ one is fetched from Google
    layout="wide",
)

common.leave_legacy_pages_mode(entry_point=True)  # app.py routes every page itself

SECTIONS = {
    "Monitoring": [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("pages/model_health.py", title="Model health", icon=":material/monitor_heart:"),
        st.Page("pages/drift.py", title="Drift investigation", icon=":material/query_stats:"),
    ],
    "Alerts": [
        st.Page("pages/alerts.py", title="Alerts inbox", icon=":material/notifications:"),
        st.Page("pages/weekly_review.py", title="Weekly review", icon=":material/summarize:"),
    ],
    "Registry": [
        st.Page("pages/registry.py", title="Registry", icon=":material/inventory_2:"),
        st.Page("pages/version.py", title="Version detail", icon=":material/fact_check:"),
        st.Page("pages/audit.py", title="Audit log", icon=":material/history:"),
    ],
}

navigation = st.navigation(SECTIONS)  # first, so the sidebar is right even during setup
common.first_start()  # background setup: its banner, or the page waits for the database
common.sidebar()
identity.sidebar_widget()
navigation.run()
