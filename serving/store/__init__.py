"""The decisions and outcomes store: SQLAlchemy models, engine, migrations, writes."""
