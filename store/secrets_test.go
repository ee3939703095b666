package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"
)

// testSecret: the first value stored under a name stays; later writers
// get it back.
func testSecret(t *testing.T, url string) {
	ctx := context.Background()
	db := open(t, url)
	if _, err := db.LoadSecret(ctx, "session-key"); !errors.Is(err, ErrNotFound) {
		t.Errorf("LoadSecret before any: got %v, want ErrNotFound", err)
	}
	got, err := db.Secret(ctx, "session-key", []byte("first"))
	if err != nil || string(got) != "first" {
		t.Fatalf("Secret on an empty table: got %q, %v; want first", got, err)
	}
	got, err = db.Secret(ctx, "session-key", []byte("second"))
	if err != nil || string(got) != "first" {
		t.Errorf("Secret again: got %q, %v; want the first writer's value", got, err)
	}
	if got, err := db.Secret(ctx, "update-key", []byte{0, 1, 2, 255}); err != nil || !bytes.Equal(got, []byte{0, 1, 2, 255}) {
		t.Errorf("another name, binary value: got %v, %v", got, err)
	}
	if _, err := db.Secret(ctx, "empty", nil); err == nil {
		t.Error("an empty value was stored")
	}
	db.Close()
	db = open(t, url)
	if got, err := db.LoadSecret(ctx, "session-key"); err != nil || string(got) != "first" {
		t.Errorf("after reopening: got %q, %v; want first", got, err)
	}
}

// testSecretConcurrentOpeners: control planes that open a new database at
// the same moment and each offer their own value all end up with the
// same one.
func testSecretConcurrentOpeners(t *testing.T, url string) {
	const openers, names = 2, 20
	got := make([][][]byte, openers)
	errs := make([]error, openers)
	var wg sync.WaitGroup
	for i := range openers {
		wg.Add(1)
		go func() { // ends when this opener has asked for every name
			defer wg.Done()
			db, err := Open(context.Background(), url, Options{})
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			for n := range names {
				v, err := db.Secret(context.Background(), fmt.Sprintf("key-%d", n), fmt.Appendf(nil, "opener-%d", i))
				if err != nil {
					errs[i] = err
					return
				}
				got[i] = append(got[i], v)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("opener %d: %v", i, err)
		}
	}
	for n := range names {
		if !bytes.Equal(got[0][n], got[1][n]) {
			t.Errorf("key-%d: opener 0 got %q, opener 1 got %q; want the same", n, got[0][n], got[1][n])
		}
	}
}

// testRevokedSessions: revocations from several writers add up; expired
// ones are neither returned nor kept.
func testRevokedSessions(t *testing.T, url string) {
	ctx := context.Background()
	a, b := open(t, url), open(t, url)
	now := time.Unix(1_800_000_000, 0).UTC()
	if m, err := a.RevokedSessions(ctx, now); err != nil || len(m) != 0 {
		t.Fatalf("empty: got %v, %v", m, err)
	}
	if err := a.AddRevokedSessions(ctx, map[string]time.Time{
		"s1":   now.Add(time.Hour),
		"old":  now.Add(-time.Second), // expired: not stored
		"edge": now,                   // expires now: expired
	}, now); err != nil {
		t.Fatal(err)
	}
	// b adds its own, and s1 again with another expiry: s1 keeps its row.
	if err := b.AddRevokedSessions(ctx, map[string]time.Time{"s1": now.Add(2 * time.Hour), "s2": now.Add(2 * time.Hour)}, now); err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{"s1": now.Add(time.Hour), "s2": now.Add(2 * time.Hour)}
	for name, db := range map[string]*DB{"a": a, "b": b} {
		got, err := db.RevokedSessions(ctx, now)
		if err != nil || !maps.EqualFunc(got, want, time.Time.Equal) {
			t.Errorf("read on %s: got %v, %v; want %v", name, got, err, want)
		}
	}
	// Later, s1 has expired: not returned, and deleted by the next add.
	later := now.Add(90 * time.Minute)
	if got, err := a.RevokedSessions(ctx, later); err != nil || len(got) != 1 || got["s2"].IsZero() {
		t.Errorf("after s1 expired: got %v, %v; want s2 only", got, err)
	}
	if err := a.AddRevokedSessions(ctx, nil, later); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := a.db.QueryRow("SELECT COUNT(*) FROM revoked_sessions").Scan(&rows); err != nil || rows != 1 {
		t.Errorf("rows after pruning: got %d, %v; want 1", rows, err)
	}
}
