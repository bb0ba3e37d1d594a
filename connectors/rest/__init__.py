"""The generic ``rest`` connector: any JSON REST API described in YAML (``config/rest/*.yaml``), and its simulator."""
