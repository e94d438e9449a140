/// The PostgreSQL schema, as numbered migrations applied in order under an advisory lock (so
/// that replicas starting together migrate once). One statement per element: the extended
/// query protocol runs one statement at a time.
///
/// The same tables as the SQLite store, with PostgreSQL's types: organization and keystore
/// names compare byte-wise (`COLLATE "C"`), so that pages are ordered the same whatever the
/// database's locale; times of pairs are microseconds since 1970 (the store contract's unit);
/// the lease and the change feed use the database's clock (`clock_timestamp()`).
enum PostgresSchema {
    struct Migration {
        let version: Int
        let description: String
        let statements: [String]
    }

    /// Serializes migrations (and change-feed writes, see ``PostgresKeyPairStore``).
    static let migrationLock: Int64 = 0x4b42_0001
    /// Held from the change-feed insert to the commit of every writing transaction, so that
    /// sequences become visible in the order they were taken (a reader never skips a change
    /// committed late with a lower sequence).
    static let changeFeedLock: Int64 = 0x4b42_0002
    /// The channel the change feed notifies.
    static let channel = "keybroker_changes"

    static let migrations: [Migration] = [
        Migration(
            version: 1,
            description: "key pairs, tenants' key configurations, usage, revocations, the change feed and leases",
            statements: [
                """
                CREATE TABLE key_pair (
                    seq bigserial PRIMARY KEY,
                    id uuid NOT NULL UNIQUE,
                    organization text COLLATE "C" NOT NULL,
                    keystore_name text COLLATE "C" NOT NULL,
                    keystore_type text COLLATE "C" NOT NULL,
                    backend_key_reference text,
                    spec text NOT NULL,
                    public_key bytea NOT NULL,
                    wrapped_private_key bytea NOT NULL,
                    encryption_context text NOT NULL,
                    created_at_us bigint NOT NULL,
                    reason text NOT NULL,
                    requested_by text NOT NULL,
                    is_current boolean NOT NULL,
                    rotation_class text COLLATE "C" NOT NULL DEFAULT ''
                )
                """,
                "CREATE UNIQUE INDEX key_pair_one_current_per_org ON key_pair (organization) WHERE is_current",
                "CREATE INDEX key_pair_by_org ON key_pair (organization, created_at_us DESC, seq DESC)",
                "CREATE INDEX key_pair_current_by_age ON key_pair (rotation_class, created_at_us, organization) WHERE is_current",
                "CREATE INDEX key_pair_current_by_keystore ON key_pair (keystore_name, organization) WHERE is_current",
                """
                CREATE TABLE key_configuration (
                    organization text COLLATE "C" PRIMARY KEY,
                    type text NOT NULL,
                    key_alias text,
                    rotation text NOT NULL,
                    key_pair_spec text,
                    version integer NOT NULL,
                    updated_at_us bigint NOT NULL,
                    updated_by text NOT NULL,
                    last_error_code text,
                    last_error_message text,
                    last_error_at_us bigint
                )
                """,
                """
                CREATE TABLE keystore_use (
                    keystore_name text COLLATE "C" NOT NULL,
                    keystore_type text COLLATE "C" NOT NULL,
                    pairs bigint NOT NULL,
                    current_pairs bigint NOT NULL,
                    PRIMARY KEY (keystore_name, keystore_type)
                )
                """,
                // Statement-level, over the statement's transition tables: one update of each
                // keystore's counts per statement. A row-level trigger would update the same
                // counter row once per pair, and in one transaction (a bulk import) each update
                // walks every version the transaction made of that row before: quadratic.
                """
                CREATE FUNCTION keybroker_key_pair_use() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF TG_OP IN ('UPDATE', 'DELETE') THEN
                        UPDATE keystore_use AS u SET pairs = u.pairs - o.pairs, current_pairs = u.current_pairs - o.current_pairs
                            FROM (SELECT keystore_name, keystore_type, count(*) AS pairs, count(*) FILTER (WHERE is_current) AS current_pairs
                                  FROM old_rows GROUP BY keystore_name, keystore_type) AS o
                            WHERE u.keystore_name = o.keystore_name AND u.keystore_type = o.keystore_type;
                    END IF;
                    IF TG_OP IN ('INSERT', 'UPDATE') THEN
                        INSERT INTO keystore_use (keystore_name, keystore_type, pairs, current_pairs)
                            SELECT keystore_name, keystore_type, count(*), count(*) FILTER (WHERE is_current)
                            FROM new_rows GROUP BY keystore_name, keystore_type
                            ON CONFLICT (keystore_name, keystore_type) DO UPDATE SET
                                pairs = keystore_use.pairs + EXCLUDED.pairs, current_pairs = keystore_use.current_pairs + EXCLUDED.current_pairs;
                    END IF;
                    DELETE FROM keystore_use WHERE pairs <= 0;
                    RETURN NULL;
                END
                $$
                """,
                """
                CREATE TRIGGER key_pair_use_insert AFTER INSERT ON key_pair
                    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION keybroker_key_pair_use()
                """,
                """
                CREATE TRIGGER key_pair_use_update AFTER UPDATE ON key_pair
                    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION keybroker_key_pair_use()
                """,
                """
                CREATE TRIGGER key_pair_use_delete AFTER DELETE ON key_pair
                    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION keybroker_key_pair_use()
                """,
                """
                CREATE TABLE revocation (
                    organization text COLLATE "C" PRIMARY KEY,
                    revoked_at_us bigint NOT NULL,
                    revoked_by text NOT NULL
                )
                """,
                """
                CREATE TABLE store_change (
                    seq bigserial PRIMARY KEY,
                    kind text NOT NULL,
                    organization text,
                    at timestamptz NOT NULL DEFAULT clock_timestamp()
                )
                """,
                "CREATE INDEX store_change_by_time ON store_change (at)",
                "CREATE TABLE store_change_pruned (id integer PRIMARY KEY CHECK (id = 1), through bigint NOT NULL)",
                """
                CREATE TABLE lease (
                    name text PRIMARY KEY,
                    holder text NOT NULL,
                    epoch bigint NOT NULL,
                    expires_at timestamptz NOT NULL
                )
                """,
            ]
        )
    ]
}
