"""What every concept stands on: settings, the SQLite file and its one writer, migrations, the
date rule, the message catalogue, the audit log, clinician accounts and replication."""
