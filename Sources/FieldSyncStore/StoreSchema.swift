import GRDB

/// The replica's SQLite schema as frozen migrations. A shipped migration is never edited; changes
/// come as new migrations written in plain SQL, never in terms of app types.
enum StoreSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
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
        migrator.registerMigration("v2-security") { db in
            try db.execute(
                sql: """
                    CREATE TABLE device_key (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        private_key BLOB NOT NULL,
                        public_key TEXT NOT NULL,
                        created INTEGER NOT NULL
                    );
                    CREATE TABLE enrolment (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        server TEXT NOT NULL,
                        token TEXT NOT NULL,
                        user TEXT NOT NULL,
                        role TEXT NOT NULL,
                        enrolled INTEGER NOT NULL
                    );
                    CREATE TABLE node_key (
                        node TEXT PRIMARY KEY,
                        public_key TEXT NOT NULL,
                        user TEXT,
                        role TEXT,
                        revoked INTEGER
                    );
                    CREATE TABLE account (
                        name TEXT PRIMARY KEY,
                        role TEXT NOT NULL,
                        created INTEGER NOT NULL,
                        revoked INTEGER
                    );
                    CREATE TABLE enrolment_code (
                        hash TEXT PRIMARY KEY,
                        account TEXT NOT NULL REFERENCES account (name),
                        created INTEGER NOT NULL,
                        expires INTEGER NOT NULL,
                        used INTEGER
                    );
                    CREATE TABLE device (
                        node TEXT PRIMARY KEY,
                        account TEXT NOT NULL REFERENCES account (name),
                        public_key TEXT NOT NULL,
                        token_hash TEXT NOT NULL,
                        enrolled INTEGER NOT NULL,
                        revoked INTEGER
                    );
                    CREATE INDEX device_token ON device (token_hash);
                    CREATE TABLE audit (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        time INTEGER NOT NULL,
                        user TEXT,
                        device TEXT,
                        action TEXT NOT NULL,
                        detail TEXT NOT NULL,
                        address TEXT
                    );
                    CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                    CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                    """)
        }
        migrator.registerMigration("v3-tls") { db in
            try db.execute(
                sql: """
                    ALTER TABLE enrolment ADD COLUMN pin TEXT;
                    ALTER TABLE enrolment ADD COLUMN pinned_cert TEXT;
                    ALTER TABLE enrolment ADD COLUMN ca_cert TEXT;
                    """)
        }
        migrator.registerMigration("v4-backup") { db in
            try db.execute(sql: "ALTER TABLE replica ADD COLUMN backup INTEGER")
        }
        migrator.registerMigration("v5-forks") { db in
            try db.execute(
                sql: """
                    CREATE TABLE forked_revision (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        node TEXT NOT NULL,
                        counter INTEGER NOT NULL,
                        record TEXT NOT NULL,
                        body TEXT NOT NULL,
                        hash TEXT NOT NULL UNIQUE,
                        reason TEXT NOT NULL,
                        detail TEXT NOT NULL,
                        stored INTEGER NOT NULL
                    );
                    CREATE INDEX forked_revision_dot ON forked_revision (node, counter);
                    CREATE TABLE stale_record (id TEXT PRIMARY KEY);
                    CREATE TABLE unconfirmed_node (node TEXT PRIMARY KEY, counter INTEGER NOT NULL);
                    ALTER TABLE replica ADD COLUMN keys_tag TEXT;
                    """)
        }
        migrator.registerMigration("v6-authority") { db in
            // The authority the record states were computed with (spec 6.3); NULL makes the next
            // open replay every record under the conflict rule of protocol 2.
            try db.execute(sql: "ALTER TABLE replica ADD COLUMN authority TEXT")
        }
        migrator.registerMigration("v7-certificates") { db in
            try db.execute(
                sql: """
                    ALTER TABLE device ADD COLUMN certificate TEXT;
                    ALTER TABLE node_key ADD COLUMN certificate TEXT;
                    ALTER TABLE enrolment ADD COLUMN server_key TEXT;
                    CREATE TABLE held_revision (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        node TEXT NOT NULL,
                        counter INTEGER NOT NULL,
                        record TEXT NOT NULL,
                        body TEXT NOT NULL,
                        reason TEXT NOT NULL,
                        stored INTEGER NOT NULL,
                        UNIQUE (node, counter, body)
                    );
                    CREATE INDEX held_revision_dot ON held_revision (node, counter);
                    CREATE TABLE node_nonce (node TEXT PRIMARY KEY, nonce TEXT NOT NULL);
                    CREATE TABLE enrolment_failure (address TEXT NOT NULL, time INTEGER NOT NULL);
                    CREATE INDEX enrolment_failure_address ON enrolment_failure (address, time);
                    ALTER TABLE replica ADD COLUMN directory_version INTEGER NOT NULL DEFAULT 0;
                    CREATE TABLE pending_enrolment (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        server TEXT NOT NULL,
                        private_key BLOB,
                        node TEXT NOT NULL,
                        nonce TEXT NOT NULL,
                        replacing TEXT NOT NULL,
                        remint_all INTEGER NOT NULL
                    );
                    CREATE TRIGGER directory_device_insert AFTER INSERT ON device BEGIN UPDATE replica SET directory_version = directory_version + 1; END;
                    CREATE TRIGGER directory_device_update AFTER UPDATE ON device BEGIN UPDATE replica SET directory_version = directory_version + 1; END;
                    CREATE TRIGGER directory_device_delete AFTER DELETE ON device BEGIN UPDATE replica SET directory_version = directory_version + 1; END;
                    CREATE TRIGGER directory_account_update AFTER UPDATE ON account BEGIN UPDATE replica SET directory_version = directory_version + 1; END;
                    """)
        }
        migrator.registerMigration("v8-sealing") { db in
            // Present with a row on an encrypted replica: the probe is `seal` of a known text, so a
            // wrong key is told at open, before any other value fails to open.
            // What the central node held of each node at the last sync: what `wipe` would lose.
            try db.execute(
                sql: """
                    CREATE TABLE sealing (id INTEGER PRIMARY KEY CHECK (id = 1), scheme INTEGER NOT NULL, probe BLOB NOT NULL);
                    CREATE TABLE central_knowledge (node TEXT PRIMARY KEY, counter INTEGER NOT NULL);
                    """)
        }
        migrator.registerMigration("v9-attachments") { db in
            // Attachments (spec 19). In an encrypted replica the hash columns hold keyed(hash) and
            // the bodies are sealed; on the central node (plaintext) they hold the hex hashes.
            // attachment_reference: every (sha256, manifest) any stored revision ever wrote to an
            //   `attachments.<sha256>.content` register, with that content; never deleted.
            // attachment_local: the attachments whose chunks this replica keeps in its blob folder.
            // attachment_receipt: the central node's receipts (account and size are the central
            //   node's own accounting; NULL on replicas).
            // attachment_upload: on the central node, uploads under way, for quotas and expiry.
            try db.execute(
                sql: """
                    CREATE TABLE attachment_reference (
                        sha TEXT NOT NULL, manifest TEXT NOT NULL, content BLOB NOT NULL, PRIMARY KEY (sha, manifest)
                    ) WITHOUT ROWID;
                    CREATE TABLE attachment_manifest (hash TEXT PRIMARY KEY, body BLOB NOT NULL);
                    CREATE TABLE attachment_local (sha TEXT PRIMARY KEY, manifest TEXT NOT NULL, added INTEGER NOT NULL);
                    CREATE TABLE attachment_receipt (sha TEXT PRIMARY KEY, body BLOB NOT NULL, account TEXT, size INTEGER);
                    CREATE TABLE attachment_upload (
                        sha TEXT PRIMARY KEY, manifest TEXT NOT NULL, account TEXT NOT NULL, size INTEGER NOT NULL,
                        started INTEGER NOT NULL
                    );
                    """)
        }
        migrator.registerMigration("v10-last-sync") { db in
            // When the last sync with the central node completed (sealed in an encrypted replica:
            // it says when the documenter was online), for the console's status page.
            try db.execute(sql: "CREATE TABLE last_sync (id INTEGER PRIMARY KEY CHECK (id = 1), time BLOB NOT NULL)")
        }
        return migrator
    }
}
