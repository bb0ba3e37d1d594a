"""Salesforce: REST connector (``connector.py``), transport (``client.py``) and the org simulator.

The simulator is split by concern: ``schema.py`` (objects, fields, ids),
``data.py`` (deterministic seed data), ``soql.py`` (the SOQL subset parser),
``query.py`` (evaluation and rendering), ``org.py`` (records, writes,
tokens, usage) and ``simulator.py`` (the WSGI routes).
"""
