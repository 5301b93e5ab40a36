import PostgresNIO

/// The central node's tables on PostgreSQL, as frozen, numbered migrations: a migration that has
/// shipped is never edited; a change is a new one. A database whose schema is newer than this
/// build knows is refused, never written.
///
/// Revision bodies are `text`, never `jsonb`: `jsonb` reorders keys, and the stored canonical text
/// is what signatures and chain hashes cover.
enum PostgresSchema {
    struct Migration {
        var version: Int
        var name: String
        var statements: [PostgresQuery]
    }

    static let migrations: [Migration] = [
        Migration(
            version: 1, name: "central",
            statements: [
                """
                CREATE TABLE central (
                    id integer PRIMARY KEY CHECK (id = 1),
                    node text NOT NULL,
                    private_key bytea NOT NULL,
                    created bigint NOT NULL,
                    authority text,
                    directory_version bigint NOT NULL DEFAULT 0
                )
                """,
                """
                CREATE TABLE revision (
                    seq bigint NOT NULL UNIQUE,
                    node text NOT NULL,
                    counter bigint NOT NULL,
                    record text NOT NULL,
                    body text NOT NULL,
                    received bigint NOT NULL,
                    PRIMARY KEY (node, counter)
                )
                """,
                "CREATE INDEX revision_record ON revision (record, seq)",
                "CREATE TABLE knowledge (node text PRIMARY KEY, counter bigint NOT NULL)",
                """
                CREATE TABLE record (
                    id text PRIMARY KEY,
                    state text NOT NULL,
                    title text,
                    deleted boolean NOT NULL,
                    conflicts integer NOT NULL,
                    updated bigint NOT NULL
                )
                """,
                "CREATE INDEX record_conflicted ON record (conflicts) WHERE conflicts > 0",
                """
                CREATE TABLE forked_revision (
                    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    node text NOT NULL,
                    counter bigint NOT NULL,
                    record text NOT NULL,
                    body text NOT NULL,
                    hash text NOT NULL UNIQUE,
                    reason text NOT NULL,
                    detail text NOT NULL,
                    stored bigint NOT NULL
                )
                """,
                "CREATE INDEX forked_revision_dot ON forked_revision (node, counter)",
                "CREATE TABLE account (name text PRIMARY KEY, role text NOT NULL, created bigint NOT NULL, revoked bigint)",
                """
                CREATE TABLE enrolment_code (
                    hash text PRIMARY KEY,
                    account text NOT NULL REFERENCES account (name),
                    created bigint NOT NULL,
                    expires bigint NOT NULL,
                    used bigint
                )
                """,
                """
                CREATE TABLE device (
                    node text PRIMARY KEY,
                    account text NOT NULL REFERENCES account (name),
                    public_key text NOT NULL,
                    token_hash text NOT NULL,
                    enrolled bigint NOT NULL,
                    revoked bigint,
                    certificate text
                )
                """,
                "CREATE INDEX device_token ON device (token_hash)",
                """
                CREATE TABLE audit (
                    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    time bigint NOT NULL,
                    "user" text,
                    device text,
                    action text NOT NULL,
                    detail text NOT NULL,
                    address text
                )
                """,
                """
                CREATE FUNCTION fieldsync_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$
                """,
                """
                CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit
                FOR EACH STATEMENT EXECUTE FUNCTION fieldsync_audit_append_only()
                """,
                """
                CREATE FUNCTION fieldsync_directory_changed() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN UPDATE central SET directory_version = directory_version + 1; RETURN NULL; END $$
                """,
                """
                CREATE TRIGGER directory_device AFTER INSERT OR UPDATE OR DELETE ON device
                FOR EACH STATEMENT EXECUTE FUNCTION fieldsync_directory_changed()
                """,
                """
                CREATE TRIGGER directory_account AFTER UPDATE ON account
                FOR EACH STATEMENT EXECUTE FUNCTION fieldsync_directory_changed()
                """,
                "CREATE TABLE enrolment_failure (address text NOT NULL, time bigint NOT NULL)",
                "CREATE INDEX enrolment_failure_address ON enrolment_failure (address, time)",
                """
                CREATE TABLE attachment_reference (
                    sha text NOT NULL, manifest text NOT NULL, content text NOT NULL, PRIMARY KEY (sha, manifest)
                )
                """,
                "CREATE TABLE attachment_manifest (hash text PRIMARY KEY, body bytea NOT NULL)",
                "CREATE TABLE attachment_receipt (sha text PRIMARY KEY, body text NOT NULL, account text, size bigint)",
                """
                CREATE TABLE attachment_upload (
                    sha text PRIMARY KEY, manifest text NOT NULL, account text NOT NULL, size bigint NOT NULL, started bigint NOT NULL
                )
                """,
                // Blobs kept in the database (no --blobs directory): complete ones, chunk by chunk,
                // and uploads being assembled, each chunk with how many of its bytes arrived.
                "CREATE TABLE blob (sha text PRIMARY KEY, manifest text NOT NULL, size bigint NOT NULL, committed bigint NOT NULL)",
                """
                CREATE TABLE blob_chunk (
                    sha text NOT NULL REFERENCES blob (sha), index integer NOT NULL, bytes bytea NOT NULL, PRIMARY KEY (sha, index)
                )
                """,
                "CREATE TABLE blob_upload (sha text PRIMARY KEY, manifest text NOT NULL, touched double precision NOT NULL)",
                """
                CREATE TABLE blob_upload_chunk (
                    sha text NOT NULL REFERENCES blob_upload (sha) ON DELETE CASCADE,
                    index integer NOT NULL,
                    bytes bytea NOT NULL,
                    verified boolean NOT NULL,
                    PRIMARY KEY (sha, index)
                )
                """,
            ])
    ]

    /// The newest schema version this build knows.
    static var current: Int { migrations.last!.version }
}
