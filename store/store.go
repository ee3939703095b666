// Package store is the control plane's SQL database: one store for
// everything the control plane keeps beyond retained MQTT messages
// (firmware, rollouts, the boards' history and the audit log, the names
// and tags people give boards, the users and boards created at run time),
// plus the content-addressed firmware files beside it (Files).
//
// Open takes the contract's database.url: "sqlite:PATH" (embedded, the
// default on one machine; "sqlite::memory:" or an empty path is a database
// in memory) or "postgres://user:pass@host/db" ("postgresql://" too), for
// several control planes sharing one database. Both are reached through
// database/sql: SQLite through modernc.org/sqlite, a translation of SQLite
// to pure Go, so the binaries stay cgo-free and cross-compile for arm
// boards; PostgreSQL through pgx's database/sql driver.
//
// The two differ in a few words of SQL only, and a small dialect type says
// which: every query is written once with ? placeholders and rebound to
// $1, $2… for PostgreSQL; the schema names its types through the dialect
// (BLOB or BYTEA). Times are stored as UTC unix nanoseconds in 64-bit
// integers, the same on both.
//
// The schema is versioned: Open runs the migrations the database has not
// had yet, each in its own transaction, and records each in the table
// schema_version. A database migrated by a newer binary than this one is
// refused with one clear error (*SchemaError) rather than used.
//
// SQLite runs in WAL mode with synchronous=NORMAL, busy_timeout and
// foreign keys on every pooled connection. With WAL, a kill -9 (or a power
// cut) never corrupts the file; a kill -9 loses nothing committed, since
// the operating system still writes what was handed to it, and a power cut
// loses at most the last transactions, those not yet checkpointed to disk.
//
// The store's consumers (the update service, the history's recorder)
// declare the small interface of the methods they call, so that their
// tests can use a fake and this package stays an adapter with no logic of
// its own beyond storing and loading.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the database/sql driver "pgx"
	"modernc.org/sqlite"               // registers the database/sql driver "sqlite"; its Error
	sqlite3 "modernc.org/sqlite/lib"   // result codes
)

// The errors of the store, wrapped with the operation: test them with
// errors.Is.
var (
	ErrExists   = errors.New("already exists")
	ErrNotFound = errors.New("not found")
	ErrTooLarge = errors.New("too large")
)

// Options are Open's settings; the zero value is ready.
type Options struct {
	// Logger receives the migrations applied; nil discards.
	Logger *slog.Logger
}

// busyTimeout is how long a SQLite statement waits for another
// connection's (or process's) write lock before it fails with "database is
// locked".
const busyTimeout = 10 * time.Second

// DB is an open store. Its methods are safe for concurrent use.
type DB struct {
	db  *sql.DB
	d   dialect
	url string // as given, password redacted: for messages
	log *slog.Logger

	closeOnce sync.Once
	closeErr  error

	// saveMu guards saved and is held across the transactions of
	// CreateRollout and SaveRollout, so that saved is always what the
	// last committed one wrote.
	saveMu sync.Mutex
	saved  map[string]map[string]boardRow // by rollout id, device id: the board rows as last written
}

// Open opens the database at rawURL (see the package comment), creating
// the parent directory of a SQLite file when missing, and migrates it to
// the schema this binary knows.
func Open(ctx context.Context, rawURL string, opts Options) (*DB, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &DB{url: redact(rawURL), log: log, saved: map[string]map[string]boardRow{}}
	driver, dsn, d, err := parseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", s.url, err)
	}
	s.d = d
	if d.name == "sqlite" && dsn != "" && !strings.HasPrefix(dsn, ":memory:") {
		if err := os.MkdirAll(filepath.Dir(sqlitePath(rawURL)), 0o700); err != nil {
			return nil, fmt.Errorf("open database %s: %w", s.url, err)
		}
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", s.url, err)
	}
	s.db = db
	if d.name == "sqlite" {
		if strings.HasPrefix(dsn, ":memory:") {
			// Every connection to ":memory:" is a database of its own,
			// and it vanishes when the connection closes: one
			// connection, kept open for the life of the pool.
			db.SetMaxOpenConns(1)
			db.SetMaxIdleConns(1)
		} else {
			// WAL has one writer at a time anyway; a few connections
			// let readers run beside it.
			db.SetMaxOpenConns(4)
			db.SetMaxIdleConns(4)
		}
	}
	if err := ping(ctx, db, d); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", s.url, err)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database; calling it again does nothing and returns the
// first call's answer.
func (s *DB) Close() error {
	s.closeOnce.Do(func() {
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("close database %s: %w", s.url, err)
		}
	})
	return s.closeErr
}

// String is the database's URL with any password redacted.
func (s *DB) String() string { return s.url }

// oneRow checks what an INSERT, UPDATE or DELETE of one row answered: its
// err, else noRow when it wrote no row, else nil.
func oneRow(res sql.Result, err, noRow error) error {
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return noRow
	}
	return nil
}

// ping opens db's first connection. With SQLite, setting up the
// connection switches a new file to WAL, which needs the file's exclusive
// lock; a control plane opening the same new file at that moment gets
// SQLITE_BUSY at once, not after busy_timeout (SQLite calls no busy
// handler there: TestSQLite/ConcurrentOpen failed so under CI). That is
// tried again, every 20 ms for busyTimeout.
func ping(ctx context.Context, db *sql.DB, d dialect) error {
	deadline := time.Now().Add(busyTimeout)
	for {
		err := db.PingContext(ctx)
		var se *sqlite.Error
		busy := errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY // the primary code, whatever the extended one
		if err == nil || d.name != "sqlite" || !busy || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond): // no event says the lock is free
		}
	}
}

// parseURL returns the database/sql driver name, its data source name and
// the dialect for the contract's database.url.
func parseURL(raw string) (driver, dsn string, d dialect, err error) {
	switch {
	case strings.HasPrefix(raw, "sqlite:"):
		path := sqlitePath(raw)
		q := url.Values{}
		q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "foreign_keys(ON)")
		// Write transactions take the write lock at BEGIN, so two of
		// them wait for each other (busy_timeout) instead of failing
		// when the second one's first write finds the first one's lock.
		// Read-only transactions still begin deferred.
		q.Set("_txlock", "immediate")
		if path == "" || path == ":memory:" {
			return "sqlite", ":memory:?" + q.Encode(), sqliteDialect, nil
		}
		return "sqlite", "file:" + escapeSQLitePath(path) + "?" + q.Encode(), sqliteDialect, nil
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		if _, err := url.Parse(raw); err != nil {
			return "", "", dialect{}, errors.New("not a valid URL")
		}
		return "pgx", raw, postgresDialect, nil
	}
	return "", "", dialect{}, errors.New(`want sqlite:PATH or postgres://user:pass@host/db`)
}

// sqlitePath is the file path of a sqlite: URL.
func sqlitePath(raw string) string { return strings.TrimPrefix(raw, "sqlite:") }

// escapeSQLitePath makes path the path part of a SQLite URI filename
// ("file:PATH?query"), where ?, # and % are special.
func escapeSQLitePath(path string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}

// redact returns the URL for messages: a postgres URL's password replaced
// by "xxxxx". A URL that does not parse is shown up to its host part only,
// since where the password ends is unknown then.
func redact(raw string) string {
	if !strings.HasPrefix(raw, "postgres://") && !strings.HasPrefix(raw, "postgresql://") {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		scheme, _, _ := strings.Cut(raw, "://")
		return scheme + "://(invalid URL)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
