package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Leases: a named lease has at most one holder at a time, until it
// expires. Expiry is measured by the database's clock, the one clock every
// control plane sharing it agrees on; a holder keeps its own, earlier,
// deadline from when it asked (package primary), so it steps down before
// the database would give the lease to another.

// AcquireLease takes lease name for holder for ttl, or renews it when
// holder has it already, and reports whether holder has it now: false
// (and no error) while another holder's lease has not expired.
func (s *DB) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := s.d.now
	res, err := s.db.ExecContext(ctx, s.d.q(`INSERT INTO leases (name, holder, expires) VALUES (?, ?, `+now+` + ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
		WHERE leases.holder = excluded.holder OR leases.expires <= `+now), name, holder, ttl.Nanoseconds())
	if err != nil {
		return false, fmt.Errorf("acquire lease %s for %s: %w", name, holder, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("acquire lease %s for %s: %w", name, holder, err)
	}
	return n == 1, nil
}

// ReleaseLease gives lease name up at once when holder has it, so that
// another may take it without waiting for it to expire; it does nothing
// when holder does not have it.
func (s *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.db.ExecContext(ctx, s.d.q(`DELETE FROM leases WHERE name = ? AND holder = ?`), name, holder); err != nil {
		return fmt.Errorf("release lease %s for %s: %w", name, holder, err)
	}
	return nil
}

// LeaseHolder returns who holds lease name now, "" when nobody does (never
// taken, released or expired).
func (s *DB) LeaseHolder(ctx context.Context, name string) (string, error) {
	var holder string
	err := s.db.QueryRowContext(ctx, s.d.q(`SELECT holder FROM leases WHERE name = ? AND expires > `+s.d.now), name).Scan(&holder)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("lease %s: %w", name, err)
	}
	return holder, nil
}
