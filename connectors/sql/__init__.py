"""The ``sql`` connector type: tables of any database SQLAlchemy reaches (SQLite, MariaDB/MySQL, PostgreSQL ...)."""
