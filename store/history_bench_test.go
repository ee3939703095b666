package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"switchyard/history"
	"switchyard/internal/testutil"
)

// The history's benchmarks answer issue 13's questions: the write cost per
// event, the database bytes per board and day at 1 Hz, and how long the
// newest page of a board with a month of events takes. Run one dialect at
// a time, for example
//
//	go test -run '^$' -bench 'History/sqlite' -benchtime 3x ./store

// benchDialects runs f against a new SQLite file and a PostgreSQL server
// of the benchmark's own.
func benchDialects(b *testing.B, f func(b *testing.B, db *DB)) {
	b.Run("sqlite", func(b *testing.B) {
		f(b, openBench(b, "sqlite:"+b.TempDir()+"/switchyard.db"))
	})
	b.Run("postgres", func(b *testing.B) {
		f(b, openBench(b, testutil.StartPostgres(b)))
	})
}

func openBench(b *testing.B, url string) *DB {
	db, err := Open(context.Background(), url, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// benchBy is who causes a simulated board's events, in turn.
var benchBy = []string{"alice", "mqtt:kitchen-switch", history.ByBoard, "bob"}

// benchEvent is simulated board event i: mostly LED changes, with a
// command and an online/offline pair now and then.
func benchEvent(dev string, i int, at time.Time) history.Event {
	e := history.Event{At: at, Device: dev, Kind: history.KindLED, Value: "ON", By: benchBy[i%len(benchBy)]}
	switch {
	case i%2 == 1:
		e.Value = "OFF"
	case i%20 == 4:
		e.Kind, e.Value = history.KindCommand, "TOGGLE applied"
	case i%50 == 10:
		e.Kind, e.Value, e.By = history.KindOffline, history.OfflineWill, ""
	case i%50 == 12:
		e.Kind, e.Value, e.By = history.KindOnline, "", ""
	}
	return e
}

// BenchmarkHistoryAppend writes batches of 1,000 events and 1,000 count
// points of 1,000 boards, as the recorder flushes them under load; per
// record is the cost of one row. "rowwise" writes the same with one
// prepared INSERT per row, the alternative to AppendHistory's multi-row
// INSERTs.
func BenchmarkHistoryAppend(b *testing.B) {
	benchDialects(b, func(b *testing.B, db *DB) {
		ctx := context.Background()
		const boards = 1000
		events := make([]history.Event, boards)
		points := make([]history.Point, boards)
		for k, w := range []struct {
			name  string
			write func() error
		}{
			{"multirow", func() error { return db.AppendHistory(ctx, events, points, nil) }},
			{"rowwise", func() error { return appendRowwise(ctx, db, events, points) }},
		} {
			b.Run(w.name, func(b *testing.B) {
				// Each its own year: new points, never an update.
				start := time.Date(2026+k, 1, 1, 0, 0, 0, 0, time.UTC)
				batch := 0
				for b.Loop() {
					at := start.Add(time.Duration(batch) * time.Minute)
					for i := range boards {
						dev := fmt.Sprintf("board-%04d", i)
						events[i] = benchEvent(dev, batch, at.Add(time.Duration(i)*time.Microsecond))
						points[i] = history.Point{Device: dev, At: at, Count: int64(batch*60 + i)}
					}
					if err := w.write(); err != nil {
						b.Fatal(err)
					}
					batch++
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2*boards), "ns/record")
			})
		}
	})
}

// appendRowwise is AppendHistory with one prepared INSERT per row: the
// alternative BenchmarkHistoryAppend measures.
func appendRowwise(ctx context.Context, s *DB, events []history.Event, points []history.Point) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, s.d.q(`INSERT INTO history_events (device, at, kind, value, who) VALUES (?, ?, ?, ?, ?)`))
	if err != nil {
		return err
	}
	defer ins.Close()
	for _, e := range events {
		if _, err := ins.ExecContext(ctx, e.Device, nanos(e.At), string(e.Kind), e.Value, e.By); err != nil {
			return err
		}
	}
	up, err := tx.PrepareContext(ctx, s.d.q(`INSERT INTO history_points (device, at, count) VALUES (?, ?, ?)
		ON CONFLICT (device, at) DO UPDATE SET count = excluded.count`))
	if err != nil {
		return err
	}
	defer up.Close()
	for _, p := range points {
		if _, err := up.ExecContext(ctx, p.Device, nanos(p.At), p.Count); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// BenchmarkHistoryBoardDay writes simulated days of 100 boards, each
// counting at 1 Hz (sampled: 1,440 points a day) with 200 events a day,
// a batch a minute, and reports the write cost per record and the
// database's bytes per board and day:
// as the file is (checkpointed; on PostgreSQL the tables and their
// indexes) and, on SQLite, after a VACUUM too. One iteration is one day.
func BenchmarkHistoryBoardDay(b *testing.B) {
	benchDialects(b, func(b *testing.B, db *DB) {
		ctx := context.Background()
		const boards, eventsPerDay = 100, 200
		base := dbBytes(b, db)
		day0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		days, records := 0, 0
		var events []history.Event
		var points []history.Point
		for b.Loop() {
			start := day0.AddDate(0, 0, days)
			for m := range 1440 {
				at := start.Add(time.Duration(m) * time.Minute)
				events, points = events[:0], points[:0]
				for i := range boards {
					dev := fmt.Sprintf("board-%04d", i)
					points = append(points, history.Point{Device: dev, At: at, Count: int64((days*1440+m)*60 + 59)})
					// eventsPerDay events a board, spread over the day.
					for k := (m * eventsPerDay / 1440); k < ((m + 1) * eventsPerDay / 1440); k++ {
						events = append(events, benchEvent(dev, k, at.Add(time.Duration(i)*time.Millisecond)))
					}
				}
				if err := db.AppendHistory(ctx, events, points, nil); err != nil {
					b.Fatal(err)
				}
				records += len(events) + len(points)
			}
			days++
		}
		b.StopTimer()
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(records), "ns/record")
		boardDays := float64(boards * days)
		b.ReportMetric(float64(dbBytes(b, db)-base)/boardDays, "bytes/board-day")
		if db.d.name == "sqlite" {
			if _, err := db.db.ExecContext(ctx, "VACUUM"); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(dbBytes(b, db)-base)/boardDays, "vacuumed-bytes/board-day")
		}
	})
}

// dbBytes is the size of the history on disk: the SQLite file after a
// checkpoint, or PostgreSQL's history tables with their indexes.
func dbBytes(b *testing.B, db *DB) int64 {
	ctx := context.Background()
	if db.d.name == "postgres" {
		var n int64
		if _, err := db.db.ExecContext(ctx, "VACUUM ANALYZE"); err != nil {
			b.Fatal(err)
		}
		err := db.db.QueryRowContext(ctx, `SELECT pg_total_relation_size('history_events') +
			pg_total_relation_size('history_points') + pg_total_relation_size('audit_log')`).Scan(&n)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	if _, err := db.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		b.Fatal(err)
	}
	var path string
	if err := db.db.QueryRowContext(ctx, "SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&path); err != nil {
		b.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return info.Size()
}

// BenchmarkHistoryMonthQuery reads the history of one board of 100 that
// each have an event a minute for 30 days (4.32 million events), as GET
// /api/devices/<id>/history does: the newest 100, a page a day back, the
// last hour, the most a request may ask; and the board's counts (a point a
// minute for the month, the 99 others' for a day) for a day and for the
// month.
func BenchmarkHistoryMonthQuery(b *testing.B) {
	benchDialects(b, func(b *testing.B, db *DB) {
		ctx := context.Background()
		const boards, minutes = 100, 30 * 1440
		end := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
		start := end.Add(-minutes * time.Minute)
		var events []history.Event
		var points []history.Point
		const step = 100 // minutes a transaction
		for m := 0; m < minutes; m += step {
			events, points = events[:0], points[:0]
			for k := m; k < m+step; k++ {
				at := start.Add(time.Duration(k) * time.Minute)
				for i := range boards {
					events = append(events, benchEvent(fmt.Sprintf("board-%04d", i), k, at))
				}
				points = append(points, history.Point{Device: "board-0042", At: at, Count: int64(k * 60)})
				if k >= minutes-1440 { // the others' counts of the last day
					for i := range boards {
						if i != 42 {
							points = append(points, history.Point{Device: fmt.Sprintf("board-%04d", i), At: at, Count: int64(k * 60)})
						}
					}
				}
			}
			if err := db.AppendHistory(ctx, events, points, nil); err != nil {
				b.Fatal(err)
			}
		}
		if db.d.name == "postgres" {
			if _, err := db.db.ExecContext(ctx, "VACUUM ANALYZE"); err != nil {
				b.Fatal(err)
			}
		} else if _, err := db.db.ExecContext(ctx, "ANALYZE"); err != nil {
			b.Fatal(err)
		}
		explain(b, db, "the newest page", `SELECT at, kind, value, who FROM history_events WHERE device = ?
			ORDER BY at DESC, id DESC LIMIT ?`, "board-0042", 100)
		explain(b, db, "has history", `SELECT CASE WHEN
			EXISTS (SELECT 1 FROM history_events WHERE device = ?) OR
			EXISTS (SELECT 1 FROM history_points WHERE device = ?) THEN 1 ELSE 0 END`, "board-9999", "board-9999")
		for _, q := range []struct {
			name string
			q    history.Query
			want int
		}{
			{"newest100", history.Query{Limit: 100}, 100},
			{"dayback100", history.Query{Until: end.Add(-24 * time.Hour), Limit: 100}, 100},
			{"lasthour", history.Query{Since: end.Add(-time.Hour), Limit: 100}, 60},
			{"newest1000", history.Query{Limit: history.MaxLimit}, history.MaxLimit},
		} {
			b.Run("events/"+q.name, func(b *testing.B) {
				for b.Loop() {
					list, err := db.Events(ctx, "board-0042", q.q)
					if err != nil || len(list) != q.want {
						b.Fatalf("Events: got %d, %v; want %d", len(list), err, q.want)
					}
				}
			})
		}
		for _, q := range []struct {
			name  string
			since time.Time
			want  int
		}{
			{"day", end.Add(-24 * time.Hour), 1440},
			{"month", start, minutes},
		} {
			b.Run("counts/"+q.name, func(b *testing.B) {
				for b.Loop() {
					pts, err := db.Points(ctx, "board-0042", q.since, time.Time{})
					if err != nil || len(pts) != q.want {
						b.Fatalf("Points: got %d, %v; want %d", len(pts), err, q.want)
					}
				}
			})
		}
		b.Run("hashistory", func(b *testing.B) {
			for b.Loop() {
				if has, err := db.HasHistory(ctx, "board-9999"); err != nil || has {
					b.Fatalf("HasHistory: got %v, %v", has, err)
				}
			}
		})
		b.Run("lastonline", func(b *testing.B) {
			for b.Loop() {
				if m, err := db.LastOnline(ctx); err != nil || len(m) != boards {
					b.Fatalf("LastOnline: got %d, %v; want %d", len(m), err, boards)
				}
			}
		})
	})
}

// explain logs the plan of a query, to see it uses the indexes.
func explain(b *testing.B, db *DB, what, query string, args ...any) {
	b.Helper()
	prefix := "EXPLAIN QUERY PLAN "
	if db.d.name == "postgres" {
		prefix = "EXPLAIN ANALYZE "
	}
	rows, err := db.db.Query(db.d.q(prefix+query), args...)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var plan []string
	for rows.Next() {
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			b.Fatal(err)
		}
		plan = append(plan, string(vals[len(vals)-1]))
	}
	b.Logf("plan of %s: %s", what, strings.Join(plan, " | "))
}
