package primary

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	sytest "switchyard/internal/testutil"
	"switchyard/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// database/sql's connection opener lives as long as the *sql.DB.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
	)
}

func TestTerm(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const ttl, margin = 15 * time.Second, time.Second
	tests := []struct {
		name string
		term Term
		at   time.Duration // after t0
		want bool
	}{
		{"granted, at once", Renewed(t0, true, ttl, margin), 0, true},
		{"granted, just before the deadline", Renewed(t0, true, ttl, margin), 14*time.Second - time.Nanosecond, true},
		{"granted, at the deadline (ttl less the margin after asking)", Renewed(t0, true, ttl, margin), 14 * time.Second, false},
		{"granted, after the database's expiry", Renewed(t0, true, ttl, margin), 16 * time.Second, false},
		{"refused", Renewed(t0, false, ttl, margin), 0, false},
		{"never asked", Term{}, 0, false},
	}
	for _, tc := range tests {
		if got := tc.term.Primary(t0.Add(tc.at)); got != tc.want {
			t.Errorf("%s: Primary: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

// waitFor polls cond: no event says that a lease expired or was taken.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func openDB(t *testing.T, url string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newElector(t *testing.T, holder string, st Store, ttl time.Duration, logs *sytest.Buffer) (*Elector, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	e, err := New(Config{Holder: holder, TTL: ttl, RenewEvery: ttl / 5, Registerer: reg, Logger: slog.New(slog.NewTextHandler(logs, nil))}, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e, reg
}

func gauge(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || mfs[0].GetName() != "switchyard_primary" {
		t.Fatalf("metrics: got %v, %v; want switchyard_primary only", mfs, err)
	}
	return mfs[0].GetMetric()[0].GetGauge().GetValue()
}

// Two control planes on one database: one primary at a time, the other
// takes over when the first stops (at once: it releases) and when it can
// no longer reach the database (once its lease expires).
func TestElectorsShareOneDatabase(t *testing.T) {
	for _, c := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "db") }},
		{"postgres", func(t *testing.T) string { return sytest.StartPostgres(t) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			url := c.url(t)
			const ttl = time.Second
			var logsA, logsB sytest.Buffer
			dbA := &failing{Store: openDB(t, url)}
			a, regA := newElector(t, "a", dbA, ttl, &logsA)
			b, regB := newElector(t, "b", openDB(t, url), ttl, &logsB)
			if !a.Primary() || b.Primary() {
				t.Fatalf("after start: a primary %v, b primary %v; want a only", a.Primary(), b.Primary())
			}
			if ga, gb := gauge(t, regA), gauge(t, regB); ga != 1 || gb != 0 {
				t.Errorf("switchyard_primary: a %v, b %v; want 1 and 0", ga, gb)
			}
			// a's database fails: a steps down by its own deadline, and b
			// takes over once the lease expired in the database, never
			// both primary at once.
			dbA.fail.Store(true)
			both := false
			waitFor(t, "takeover by b", func() bool {
				pa, pb := a.Primary(), b.Primary()
				both = both || pa && pb
				return pb && !pa
			})
			if both {
				t.Error("a and b were primary at the same time")
			}
			waitFor(t, "a's step-down line", func() bool {
				return strings.Contains(logsA.String(), "stepped down: the lease could not be renewed in time")
			})
			dbA.fail.Store(false)
			// b stops cleanly: it releases the lease and a takes it at its
			// next attempt, well before the lease would have expired.
			b.Close()
			if b.Primary() {
				t.Error("b is primary after Close")
			}
			if !strings.Contains(logsB.String(), "released the lease") {
				t.Errorf("b's logs have no release line:\n%s", logsB.String())
			}
			waitFor(t, "takeover by a", a.Primary)
			if got := gauge(t, regA); got != 1 {
				t.Errorf("a's switchyard_primary after takeover: got %v, want 1", got)
			}
			if n := strings.Count(logsA.String(), "is now the primary"); n != 2 {
				t.Errorf("a's 'now the primary' lines: got %d, want 2 (start, takeover)\n%s", n, logsA.String())
			}
		})
	}
}

// failing is a Store whose acquisitions fail while fail is set.
type failing struct {
	Store
	fail atomic.Bool
}

func (f *failing) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if f.fail.Load() {
		return false, errors.New("connection refused")
	}
	return f.Store.AcquireLease(ctx, name, holder, ttl)
}

func TestAlonePrimaryForGood(t *testing.T) {
	reg := prometheus.NewRegistry()
	e, err := New(Config{Registerer: reg}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if !e.Primary() || gauge(t, reg) != 1 {
		t.Errorf("without a store: primary %v, gauge %v; want true and 1", e.Primary(), gauge(t, reg))
	}
	e.Close()
	e.Close()
}

func TestConfigErrors(t *testing.T) {
	st := &failing{}
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no holder", Config{}, "Holder is required"},
		{"renewal too slow", Config{Holder: "a", TTL: time.Second, RenewEvery: time.Second}, "RenewEvery"},
	} {
		if _, err := New(c.cfg, st); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", c.name, err, c.want)
		}
	}
}
