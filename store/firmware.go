package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"switchyard/rollout"
)

// AddFirmware records an uploaded build; ErrExists when its SHA-256 is
// recorded already.
func (s *DB) AddFirmware(ctx context.Context, fw rollout.Firmware) error {
	res, err := s.db.ExecContext(ctx, s.d.q(`INSERT INTO firmware (sha256, version, platform, size, uploaded, signature)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING`),
		fw.SHA256, fw.Version, fw.Platform, fw.Size, nanos(fw.Uploaded), fw.Signature)
	if err := oneRow(res, err, ErrExists); err != nil {
		return fmt.Errorf("add firmware %s: %w", fw.SHA256, err)
	}
	return nil
}

// Firmware returns the build with that SHA-256; ErrNotFound when none.
func (s *DB) Firmware(ctx context.Context, sha string) (rollout.Firmware, error) {
	row := s.db.QueryRowContext(ctx, s.d.q(`SELECT sha256, version, platform, size, uploaded, signature
		FROM firmware WHERE sha256 = ?`), sha)
	fw, err := scanFirmware(row)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return rollout.Firmware{}, fmt.Errorf("firmware %s: %w", sha, err)
	}
	return fw, nil
}

// ListFirmware returns every build, newest upload first.
func (s *DB) ListFirmware(ctx context.Context) ([]rollout.Firmware, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT sha256, version, platform, size, uploaded, signature
		FROM firmware ORDER BY uploaded DESC, sha256`)
	if err != nil {
		return nil, fmt.Errorf("list firmware: %w", err)
	}
	defer rows.Close()
	var list []rollout.Firmware
	for rows.Next() {
		fw, err := scanFirmware(rows)
		if err != nil {
			return nil, fmt.Errorf("list firmware: %w", err)
		}
		list = append(list, fw)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list firmware: %w", err)
	}
	return list, nil
}

// DeleteFirmware forgets the build with that SHA-256 (its file is the
// caller's: Files.Remove); ErrNotFound when none. Rollouts that used it
// keep their records.
func (s *DB) DeleteFirmware(ctx context.Context, sha string) error {
	res, err := s.db.ExecContext(ctx, s.d.q(`DELETE FROM firmware WHERE sha256 = ?`), sha)
	if err := oneRow(res, err, ErrNotFound); err != nil {
		return fmt.Errorf("delete firmware %s: %w", sha, err)
	}
	return nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanFirmware(r scanner) (rollout.Firmware, error) {
	var fw rollout.Firmware
	var uploaded int64
	if err := r.Scan(&fw.SHA256, &fw.Version, &fw.Platform, &fw.Size, &uploaded, &fw.Signature); err != nil {
		return rollout.Firmware{}, err
	}
	fw.Uploaded = fromNanos(uploaded)
	return fw, nil
}

// nanos is t as stored: unix nanoseconds, 0 for the zero time. Times
// before 1678 or after 2262 do not fit; none of the store's do.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos is nanos' inverse, in UTC.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
