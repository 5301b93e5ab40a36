import GRDB

/// The replica's SQLite schema as frozen migrations. A shipped migration is never edited; changes
/// come as new migrations written in plain SQL, never in terms of app types.
enum StoreSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE replica (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    node TEXT NOT NULL,
                    name TEXT NOT NULL,
                    server TEXT,
                    created INTEGER NOT NULL
                );
                CREATE TABLE retired_node (
                    node TEXT PRIMARY KEY,
                    retired INTEGER NOT NULL,
                    reason TEXT NOT NULL
                );
                CREATE TABLE revision (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    node TEXT NOT NULL,
                    counter INTEGER NOT NULL,
                    record TEXT NOT NULL,
                    body TEXT NOT NULL,
                    received INTEGER NOT NULL,
                    UNIQUE (node, counter)
                );
                CREATE INDEX revision_record ON revision (record, seq);
                CREATE TABLE knowledge (
                    node TEXT PRIMARY KEY,
                    counter INTEGER NOT NULL
                );
                CREATE TABLE record (
                    id TEXT PRIMARY KEY,
                    state TEXT NOT NULL,
                    title TEXT,
                    deleted INTEGER NOT NULL,
                    conflicts INTEGER NOT NULL,
                    updated INTEGER NOT NULL
                );
                CREATE INDEX record_conflicted ON record (conflicts) WHERE conflicts > 0;
                """)
        }
        return migrator
    }
}
