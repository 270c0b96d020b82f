"""Community submissions: preview what would be kept, record consent, queue the anonymized
history in the inbox, store it (or quarantine it with a reason), and delete it on request.

The dashboard and the CLI call `preview.preview_submission` and `inbox.write_submission`;
the inbox flow calls `jobs.process_inbox`. Nothing here imports Prefect or Streamlit.
"""
