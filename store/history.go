package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"switchyard/history"
)

// The history and the audit log (issue 13): package recorder writes them
// in batches, one transaction a flush, and serves their queries.

// historyBatch is how many rows one INSERT of the history writes: 6 values
// a row at most, well under both SQLite's and PostgreSQL's limit on
// parameters.
const historyBatch = 200

// pruneBatch bounds the rows one DELETE of PruneHistory removes: each is a
// transaction of its own, so a prune holds SQLite's write lock for a few
// milliseconds at a time and the recorder's flushes go on between them.
const pruneBatch = 5000

// AppendHistory writes board events, count points and audit entries in
// one transaction: all of them or, on error, none. Text that PostgreSQL
// would refuse (invalid UTF-8, NUL bytes: a board's firmware string, a
// name tried at a failed login) is stored mended, as text() says, so that
// no record makes a batch fail for ever. Events and entries keep
// their order (the order they are read back in at equal times); a point of
// a board and step already written replaces it, the last one in points
// winning.
func (s *DB) AppendHistory(ctx context.Context, events []history.Event, points []history.Point, audit []history.Entry) error {
	if len(events)+len(points)+len(audit) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("append history: %w", err)
	}
	defer tx.Rollback() // after Commit it does nothing
	err = insertRows(ctx, tx, s.d, `INSERT INTO history_events (device, at, kind, value, who) VALUES `, "", 5, len(events),
		func(i int, args []any) []any {
			e := events[i]
			return append(args, text(e.Device), nanos(e.At), text(string(e.Kind)), text(e.Value), text(e.By))
		})
	if err != nil {
		return fmt.Errorf("append history: events: %w", err)
	}
	points = lastPoints(points)
	err = insertRows(ctx, tx, s.d, `INSERT INTO history_points (device, at, count) VALUES `,
		` ON CONFLICT (device, at) DO UPDATE SET count = excluded.count`, 3, len(points),
		func(i int, args []any) []any {
			p := points[i]
			return append(args, text(p.Device), nanos(p.At), p.Count)
		})
	if err != nil {
		return fmt.Errorf("append history: points: %w", err)
	}
	err = insertRows(ctx, tx, s.d, `INSERT INTO audit_log (at, actor, action, target, result, remote) VALUES `, "", 6, len(audit),
		func(i int, args []any) []any {
			e := audit[i]
			return append(args, nanos(e.At), text(e.Actor), text(string(e.Action)), text(e.Target), text(string(e.Result)), text(e.Remote))
		})
	if err != nil {
		return fmt.Errorf("append history: audit: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("append history: %w", err)
	}
	return nil
}

// text is s as stored: invalid UTF-8 replaced by U+FFFD and NUL bytes
// removed, which PostgreSQL's text refuses.
func text(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// insertRows inserts n rows of cols values each, historyBatch rows per
// statement: head is the statement up to VALUES, tail what follows the
// rows, and row appends row i's values to args. The statement of a whole
// batch is prepared once per call.
func insertRows(ctx context.Context, tx *sql.Tx, d dialect, head, tail string, cols, n int, row func(i int, args []any) []any) error {
	if n == 0 {
		return nil
	}
	query := func(rows int) string {
		one := "(" + strings.Repeat("?, ", cols-1) + "?)"
		return d.q(head + strings.Repeat(one+", ", rows-1) + one + tail)
	}
	var full *sql.Stmt
	args := make([]any, 0, cols*min(n, historyBatch))
	for i := 0; i < n; {
		rows := min(n-i, historyBatch)
		args = args[:0]
		for j := range rows {
			args = row(i+j, args)
		}
		var err error
		if rows == historyBatch {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, query(rows)); err != nil {
					return err
				}
				defer full.Close()
			}
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, query(rows), args...)
		}
		if err != nil {
			return err
		}
		i += rows
	}
	return nil
}

// lastPoints returns points with only the last of each board and step:
// one INSERT … ON CONFLICT DO UPDATE may not update a row twice on
// PostgreSQL. It returns points itself when there are no such repeats.
func lastPoints(points []history.Point) []history.Point {
	type key struct {
		device string
		at     int64
	}
	last := make(map[key]int, len(points))
	for i, p := range points {
		last[key{p.Device, nanos(p.At)}] = i
	}
	if len(last) == len(points) {
		return points
	}
	out := make([]history.Point, 0, len(last))
	for i, p := range points {
		if last[key{p.Device, nanos(p.At)}] == i {
			out = append(out, p)
		}
	}
	return out
}

// window appends to query and args the conditions of since (at or after)
// and until (before), either zero for unbounded.
func window(query string, args []any, since, until time.Time) (string, []any) {
	if !since.IsZero() {
		query += ` AND at >= ?`
		args = append(args, nanos(since))
	}
	if !until.IsZero() {
		query += ` AND at < ?`
		args = append(args, nanos(until))
	}
	return query, args
}

// limit is q's limit, history.DefaultLimit when not positive.
func limit(q history.Query) int {
	if q.Limit <= 0 {
		return history.DefaultLimit
	}
	return q.Limit
}

// Events returns device's events in q's window, newest first (the last
// recorded first among equal times), at most q.Limit (history.DefaultLimit
// when 0).
func (s *DB) Events(ctx context.Context, device string, q history.Query) ([]history.Event, error) {
	query, args := window(`SELECT at, kind, value, who FROM history_events WHERE device = ?`, []any{device}, q.Since, q.Until)
	list, err := queryRows(ctx, s, query+` ORDER BY at DESC, id DESC LIMIT ?`, append(args, limit(q)),
		func(r scanner) (history.Event, error) {
			e := history.Event{Device: device}
			var at int64
			err := r.Scan(&at, &e.Kind, &e.Value, &e.By)
			e.At = fromNanos(at)
			return e, err
		})
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", device, err)
	}
	return list, nil
}

// Points returns device's count points from since (inclusive) to until
// (exclusive), either zero for unbounded, oldest first. Retention bounds
// them: a month is 43,200 points a board.
func (s *DB) Points(ctx context.Context, device string, since, until time.Time) ([]history.Point, error) {
	query, args := window(`SELECT at, count FROM history_points WHERE device = ?`, []any{device}, since, until)
	list, err := queryRows(ctx, s, query+` ORDER BY at`, args,
		func(r scanner) (history.Point, error) {
			p := history.Point{Device: device}
			var at int64
			err := r.Scan(&at, &p.Count)
			p.At = fromNanos(at)
			return p, err
		})
	if err != nil {
		return nil, fmt.Errorf("counts of %s: %w", device, err)
	}
	return list, nil
}

// AuditLog returns the audit entries in q's window, of actor only when it
// is not empty, newest first (the last recorded first among equal times),
// at most q.Limit (history.DefaultLimit when 0).
func (s *DB) AuditLog(ctx context.Context, q history.Query, actor string) ([]history.Entry, error) {
	query, args := `SELECT at, actor, action, target, result, remote FROM audit_log WHERE 1 = 1`, []any{}
	if actor != "" {
		query += ` AND actor = ?`
		args = append(args, actor)
	}
	query, args = window(query, args, q.Since, q.Until)
	list, err := queryRows(ctx, s, query+` ORDER BY at DESC, id DESC LIMIT ?`, append(args, limit(q)),
		func(r scanner) (history.Entry, error) {
			var e history.Entry
			var at int64
			err := r.Scan(&at, &e.Actor, &e.Action, &e.Target, &e.Result, &e.Remote)
			e.At = fromNanos(at)
			return e, err
		})
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return list, nil
}

// queryRows runs query (with ? placeholders) and returns its rows as scan
// reads each: an empty list, not nil, when there are none.
func queryRows[T any](ctx context.Context, s *DB, query string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	rows, err := s.db.QueryContext(ctx, s.d.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	list := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		list = append(list, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return list, nil
}

// HasHistory reports whether device has any event or count point stored.
func (s *DB) HasHistory(ctx context.Context, device string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.d.q(`SELECT CASE WHEN
		EXISTS (SELECT 1 FROM history_events WHERE device = ?) OR
		EXISTS (SELECT 1 FROM history_points WHERE device = ?) THEN 1 ELSE 0 END`), device, device).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("history of %s: %w", device, err)
	}
	return n == 1, nil
}

// devicesOf is a query of the devices of a history table (history_events
// or history_points; both are indexed by device first), each found by one
// seek in the index rather than by reading every row: a loose index scan.
// The query's one parameter is a time: only devices with a row before it
// are listed.
func devicesOf(table string) string {
	return `WITH RECURSIVE d(device) AS (
		SELECT MIN(device) FROM ` + table + `
		UNION ALL
		SELECT (SELECT MIN(device) FROM ` + table + ` WHERE device > d.device) FROM d WHERE d.device IS NOT NULL
	)
	SELECT device FROM d WHERE device IS NOT NULL
		AND (SELECT MIN(at) FROM ` + table + ` t WHERE t.device = d.device) < ?`
}

// LastOnline returns, for every device with an online or offline event,
// the kind of the newest one (history.KindOnline or history.KindOffline):
// at start, what the history last said of each board.
func (s *DB) LastOnline(ctx context.Context) (map[string]history.Kind, error) {
	type last struct {
		device string
		kind   sql.NullString // NULL: no online or offline event
	}
	list, err := queryRows(ctx, s, `WITH RECURSIVE d(device) AS (
		SELECT MIN(device) FROM history_events
		UNION ALL
		SELECT (SELECT MIN(device) FROM history_events WHERE device > d.device) FROM d WHERE d.device IS NOT NULL
	)
	SELECT device, (SELECT kind FROM history_events e WHERE e.device = d.device AND e.kind IN (?, ?)
		ORDER BY e.at DESC, e.id DESC LIMIT 1)
	FROM d WHERE device IS NOT NULL`, []any{string(history.KindOnline), string(history.KindOffline)},
		func(r scanner) (l last, err error) {
			err = r.Scan(&l.device, &l.kind)
			return l, err
		})
	if err != nil {
		return nil, fmt.Errorf("last online states: %w", err)
	}
	m := make(map[string]history.Kind, len(list))
	for _, l := range list {
		if l.kind.Valid {
			m[l.device] = history.Kind(l.kind.String)
		}
	}
	return m, nil
}

// PruneHistory deletes the events, points and audit entries from before
// before, and returns how many rows it deleted. It deletes at most
// pruneBatch rows per transaction, device by device through the indexes,
// so that it never holds SQLite's write lock for long, and stops early,
// with ctx's error, when ctx is done; what it deleted until then stays
// deleted.
func (s *DB) PruneHistory(ctx context.Context, before time.Time) (int64, error) {
	cut := nanos(before)
	var total int64
	// del runs a DELETE of at most pruneBatch rows until it deletes fewer.
	del := func(query string, args ...any) error {
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			res, err := s.db.ExecContext(ctx, s.d.q(query), args...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			total += n
			if n < pruneBatch {
				return nil
			}
		}
	}
	err := del(`DELETE FROM audit_log WHERE id IN
		(SELECT id FROM audit_log WHERE at < ? ORDER BY at LIMIT ?)`, cut, pruneBatch)
	if err != nil {
		return total, fmt.Errorf("prune audit log: %w", err)
	}
	for _, t := range []struct{ table, query string }{
		{"history_events", `DELETE FROM history_events WHERE id IN
			(SELECT id FROM history_events WHERE device = ? AND at < ? ORDER BY at LIMIT ?)`},
		{"history_points", `DELETE FROM history_points WHERE device = ? AND at IN
			(SELECT at FROM history_points WHERE device = ? AND at < ? ORDER BY at LIMIT ?)`},
	} {
		devs, err := queryRows(ctx, s, devicesOf(t.table), []any{cut}, func(r scanner) (dev string, err error) {
			err = r.Scan(&dev)
			return dev, err
		})
		if err != nil {
			return total, fmt.Errorf("prune %s: %w", t.table, err)
		}
		for _, dev := range devs {
			args := []any{dev, cut, pruneBatch}
			if t.table == "history_points" {
				args = []any{dev, dev, cut, pruneBatch}
			}
			if err := del(t.query, args...); err != nil {
				return total, fmt.Errorf("prune %s of %s: %w", t.table, dev, err)
			}
		}
	}
	return total, nil
}
