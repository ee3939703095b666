package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migration is one step of the schema: SQL statements run in one
// transaction, in the dialect's types (see dialect.schema).
type migration struct {
	name  string
	steps []string
}

// migrations is the schema's history, oldest first: version n is
// migrations[n-1]. Steps are only ever appended; a released step is never
// edited, since databases out there already ran it.
var migrations = []migration{
	{
		name: "firmware and rollouts (issue 12)",
		steps: []string{
			`CREATE TABLE firmware (
				sha256    TEXT PRIMARY KEY,
				version   TEXT NOT NULL,
				platform  TEXT NOT NULL,
				size      {int64} NOT NULL,
				uploaded  {int64} NOT NULL,
				signature {blob}
			)`,
			// waves holds each wave's size and state as JSON
			// ([{"size":1,"state":"done"},…]); the boards are in
			// rollout_boards.
			`CREATE TABLE rollouts (
				id       TEXT PRIMARY KEY,
				firmware TEXT NOT NULL,
				version  TEXT NOT NULL,
				platform TEXT NOT NULL,
				state    TEXT NOT NULL,
				reason   TEXT NOT NULL,
				created  {int64} NOT NULL,
				updated  {int64} NOT NULL,
				spec     TEXT NOT NULL,
				waves    TEXT NOT NULL,
				jobs     {int64} NOT NULL
			)`,
			`CREATE TABLE rollout_boards (
				rollout_id   TEXT NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
				device_id    TEXT NOT NULL,
				wave         {int64} NOT NULL,
				position     {int64} NOT NULL,
				state        TEXT NOT NULL,
				error        TEXT NOT NULL,
				job          TEXT NOT NULL,
				since        {int64} NOT NULL,
				update_state TEXT NOT NULL,
				PRIMARY KEY (rollout_id, device_id)
			)`,
		},
	},
	{
		name: "device names and tags (issue 13)",
		steps: []string{
			// What people set on a board at run time: name "" for none;
			// tags a JSON array of strings, NULL when never set (the
			// config file's apply then).
			`CREATE TABLE device_meta (
				id   TEXT PRIMARY KEY,
				name TEXT NOT NULL,
				tags TEXT
			)`,
		},
	},
	{
		name: "history and audit log (issue 13)",
		steps: []string{
			// A board's events, read newest first by device and time;
			// id keeps the order of events recorded in the same
			// nanosecond (the order the gateway applied them).
			`CREATE TABLE history_events (
				id     {serial},
				device TEXT NOT NULL,
				at     {int64} NOT NULL,
				kind   TEXT NOT NULL,
				value  TEXT NOT NULL,
				who    TEXT NOT NULL
			)`,
			`CREATE INDEX history_events_device_at ON history_events (device, at, id)`,
			// A board's count, one row a minute: the key is the only
			// index (on SQLite the table itself, WITHOUT ROWID), which
			// keeps a board-day of points small.
			`CREATE TABLE history_points (
				device TEXT NOT NULL,
				at     {int64} NOT NULL,
				count  {int64} NOT NULL,
				PRIMARY KEY (device, at)
			){without rowid}`,
			`CREATE TABLE audit_log (
				id     {serial},
				at     {int64} NOT NULL,
				actor  TEXT NOT NULL,
				action TEXT NOT NULL,
				target TEXT NOT NULL,
				result TEXT NOT NULL,
				remote TEXT NOT NULL
			)`,
			`CREATE INDEX audit_log_at ON audit_log (at, id)`,
			`CREATE INDEX audit_log_actor_at ON audit_log (actor, at, id)`,
		},
	},
	{
		name: "users, tokens and boards (issue 14)",
		steps: []string{
			// The users created at run time (config.yaml's are not
			// here): ids a JSON array of board ids (device role, else
			// []); password_hash bcrypt for people, secret_digest the
			// SHA-256 hex of a board's generated secret, "" when none;
			// disabled 0 or 1.
			`CREATE TABLE users (
				name          TEXT PRIMARY KEY,
				role          TEXT NOT NULL,
				ids           TEXT NOT NULL,
				password_hash TEXT NOT NULL,
				secret_digest TEXT NOT NULL,
				disabled      {int64} NOT NULL,
				created       {int64} NOT NULL
			)`,
			// A user's API tokens, by a short public id; digest the
			// SHA-256 hex of the token.
			`CREATE TABLE user_tokens (
				id        TEXT PRIMARY KEY,
				user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
				digest    TEXT NOT NULL UNIQUE,
				created   {int64} NOT NULL
			)`,
			`CREATE INDEX user_tokens_user_name ON user_tokens (user_name)`,
			// The boards onboarded at run time (created or adopted by
			// an admin); a board's device user, when it has one, is the
			// user named by its id.
			`CREATE TABLE boards (
				id         TEXT PRIMARY KEY,
				created    {int64} NOT NULL,
				created_by TEXT NOT NULL
			)`,
		},
	},
	{
		name: "secrets shared by control planes (issue 15)",
		steps: []string{
			// The session key and the update key of every control
			// plane on this database, by name; the first to start
			// writes them (see Secret).
			`CREATE TABLE secrets (
				name  TEXT PRIMARY KEY,
				value {blob} NOT NULL
			)`,
			// The sessions logged out on any of them, by session id,
			// until they would have expired (unix nanoseconds).
			`CREATE TABLE revoked_sessions (
				id      TEXT PRIMARY KEY,
				expires {int64} NOT NULL
			)`,
			`CREATE INDEX revoked_sessions_expires ON revoked_sessions (expires)`,
		},
	},
	{
		name: "leases and rollout requests (issue 15)",
		steps: []string{
			// Who holds a named lease (the primary control plane's
			// "primary") until when, in unix nanoseconds of the
			// database's own clock.
			`CREATE TABLE leases (
				name    TEXT PRIMARY KEY,
				holder  TEXT NOT NULL,
				expires {int64} NOT NULL
			)`,
			// Pause, resume and abort asked of a control plane that
			// does not drive rollouts, for the one that does: result ""
			// until it answers ("ok" or why not), answered its time.
			`CREATE TABLE rollout_requests (
				id         {serial},
				rollout_id TEXT NOT NULL,
				action     TEXT NOT NULL,
				requested  {int64} NOT NULL,
				result     TEXT NOT NULL,
				answered   {int64} NOT NULL
			)`,
		},
	},
}

// SchemaError is Open's answer for a database migrated by a newer binary:
// this one does not know its schema and leaves it alone.
type SchemaError struct {
	URL   string // redacted
	Found int    // the database's schema version
	Known int    // the newest this binary knows
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("database %s has schema version %d, newer than this controlplane (%d): upgrade controlplane", e.URL, e.Found, e.Known)
}

// migrationLock is the PostgreSQL advisory lock that control planes
// sharing a database take while they migrate it, so that two starting at
// once do not both run a step. SQLite needs none: its write transactions
// already exclude each other.
const migrationLock = 0x5377_7964 // "Swyd"

// migrate brings the database to len(migrations), one step per
// transaction, and refuses a newer one.
func (s *DB) migrate(ctx context.Context) error {
	known := len(migrations)
	for {
		applied, err := s.migrateOne(ctx, known)
		if err != nil {
			return err
		}
		if !applied {
			return nil
		}
	}
}

// migrateOne applies the next migration the database has not had, if any,
// and reports whether it did.
func (s *DB) migrateOne(ctx context.Context, known int) (applied bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migrate database %s: %w", s.url, err)
	}
	defer tx.Rollback() // after Commit it does nothing
	if s.d.name == "postgres" {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLock); err != nil {
			return false, fmt.Errorf("migrate database %s: lock: %w", s.url, err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.d.schema(`CREATE TABLE IF NOT EXISTS schema_version (
		version {int64} PRIMARY KEY,
		name    TEXT NOT NULL,
		applied {int64} NOT NULL
	)`)); err != nil {
		return false, fmt.Errorf("migrate database %s: create schema_version: %w", s.url, err)
	}
	var version sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_version").Scan(&version); err != nil {
		return false, fmt.Errorf("migrate database %s: read schema version: %w", s.url, err)
	}
	have := int(version.Int64)
	if have > known {
		return false, &SchemaError{URL: s.url, Found: have, Known: known}
	}
	if have == known {
		return false, tx.Commit()
	}
	m := migrations[have]
	for _, step := range m.steps {
		if _, err := tx.ExecContext(ctx, s.d.schema(step)); err != nil {
			return false, fmt.Errorf("migrate database %s to version %d (%s): %w", s.url, have+1, m.name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.d.q("INSERT INTO schema_version (version, name, applied) VALUES (?, ?, ?)"),
		have+1, m.name, time.Now().UnixNano()); err != nil {
		return false, fmt.Errorf("migrate database %s to version %d: %w", s.url, have+1, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migrate database %s to version %d: %w", s.url, have+1, err)
	}
	s.log.Info("database migrated", "database", s.url, "version", have+1, "step", m.name)
	return true, nil
}
