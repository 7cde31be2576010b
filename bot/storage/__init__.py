"""The store: SQLModel tables, engines and sessions, tenants and follows, the paper catalogue, migrations."""
