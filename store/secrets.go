package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The secrets that control planes sharing one database must agree on (the
// key that signs session cookies, the key that signs firmware) and the
// sessions logged out on any of them. On one machine (SQLite) the control
// plane keeps these in files instead; the tables exist there too, unused.

// Secret returns the value stored under name, storing value first when
// there is none: the first writer wins, so control planes that start at
// once with different candidates all get the same one back. The value is
// returned as stored, whatever value was.
func (s *DB) Secret(ctx context.Context, name string, value []byte) ([]byte, error) {
	if len(value) == 0 {
		return nil, fmt.Errorf("secret %s: empty value", name)
	}
	if _, err := s.db.ExecContext(ctx, s.d.q(`INSERT INTO secrets (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO NOTHING`), name, value); err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	return s.LoadSecret(ctx, name) // nothing deletes a secret
}

// LoadSecret returns the value stored under name, or ErrNotFound.
func (s *DB) LoadSecret(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := s.db.QueryRowContext(ctx, s.d.q(`SELECT value FROM secrets WHERE name = ?`), name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("secret %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	return v, nil
}

// AddRevokedSessions records logged-out sessions (id → the time the
// session would have expired) beside those already recorded, and deletes
// the rows expired at now. An id recorded already keeps its row.
func (s *DB) AddRevokedSessions(ctx context.Context, revoked map[string]time.Time, now time.Time) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add revoked sessions: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	ins, err := tx.PrepareContext(ctx, s.d.q(`INSERT INTO revoked_sessions (id, expires) VALUES (?, ?)
		ON CONFLICT (id) DO NOTHING`))
	if err != nil {
		return fmt.Errorf("add revoked sessions: %w", err)
	}
	defer ins.Close()
	for id, exp := range revoked {
		if !now.Before(exp) {
			continue // expired anyway
		}
		if _, err := ins.ExecContext(ctx, id, nanos(exp)); err != nil {
			return fmt.Errorf("add revoked sessions: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.d.q(`DELETE FROM revoked_sessions WHERE expires <= ?`), nanos(now)); err != nil {
		return fmt.Errorf("add revoked sessions: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add revoked sessions: %w", err)
	}
	return nil
}

// RevokedSessions returns the logged-out sessions that expire after now,
// id → expiry.
func (s *DB) RevokedSessions(ctx context.Context, now time.Time) (map[string]time.Time, error) {
	rows, err := s.db.QueryContext(ctx, s.d.q(`SELECT id, expires FROM revoked_sessions WHERE expires > ?`), nanos(now))
	if err != nil {
		return nil, fmt.Errorf("load revoked sessions: %w", err)
	}
	defer rows.Close()
	m := map[string]time.Time{}
	for rows.Next() {
		var id string
		var exp int64
		if err := rows.Scan(&id, &exp); err != nil {
			return nil, fmt.Errorf("load revoked sessions: %w", err)
		}
		m[id] = fromNanos(exp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load revoked sessions: %w", err)
	}
	return m, nil
}
