"""The ``file`` connector type: exports in a folder (CSV, XLSX, JSON lines) in, an outbox folder out."""
