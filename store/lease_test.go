package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// The lease and the rollout requests, as several control planes sharing
// one database use them: each test opens the database more than once, as
// several processes would.

const leaseName = "primary"

func acquire(t *testing.T, db *DB, holder string, ttl time.Duration) bool {
	t.Helper()
	got, err := db.AcquireLease(context.Background(), leaseName, holder, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func holderOf(t *testing.T, db *DB) string {
	t.Helper()
	h, err := db.LeaseHolder(context.Background(), leaseName)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func testLease(t *testing.T, url string) {
	a, b := open(t, url), open(t, url)
	const ttl = time.Hour
	if h := holderOf(t, a); h != "" {
		t.Errorf("holder of a lease never taken: got %q, want none", h)
	}
	steps := []struct {
		db     *DB
		holder string
		want   bool
	}{
		{a, "a", true},  // free: taken
		{b, "b", false}, // a's, not expired
		{a, "a", true},  // renewed
		{b, "b", false},
	}
	for i, s := range steps {
		if got := acquire(t, s.db, s.holder, ttl); got != s.want {
			t.Errorf("step %d: %s acquires: got %v, want %v", i, s.holder, got, s.want)
		}
	}
	if h := holderOf(t, b); h != "a" {
		t.Errorf("holder: got %q, want a", h)
	}
	// b's release of a lease it does not hold changes nothing.
	if err := b.ReleaseLease(context.Background(), leaseName, "b"); err != nil {
		t.Fatal(err)
	}
	if h := holderOf(t, b); h != "a" {
		t.Errorf("holder after another's release: got %q, want a", h)
	}
	// a's release frees it at once.
	if err := a.ReleaseLease(context.Background(), leaseName, "a"); err != nil {
		t.Fatal(err)
	}
	if h := holderOf(t, b); h != "" {
		t.Errorf("holder after release: got %q, want none", h)
	}
	if !acquire(t, b, "b", ttl) {
		t.Errorf("b acquires a released lease: got false, want true")
	}
	if acquire(t, a, "a", ttl) {
		t.Errorf("a acquires b's lease: got true, want false")
	}
	if h := holderOf(t, a); h != "b" {
		t.Errorf("holder: got %q, want b", h)
	}
}

func testLeaseExpires(t *testing.T, url string) {
	a, b := open(t, url), open(t, url)
	const ttl = 300 * time.Millisecond
	if !acquire(t, a, "a", ttl) {
		t.Fatal("a acquires a free lease: got false")
	}
	if acquire(t, b, "b", time.Hour) {
		t.Fatal("b acquires a's lease at once: got true, want false (it has not expired)")
	}
	// No event says that a lease expired: poll, with a deadline.
	deadline := time.Now().Add(10 * time.Second)
	for !acquire(t, b, "b", time.Hour) {
		if time.Now().After(deadline) {
			t.Fatalf("b never took a's expired lease (ttl %v)", ttl)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if h := holderOf(t, a); h != "b" {
		t.Errorf("holder after expiry: got %q, want b", h)
	}
	if acquire(t, a, "a", ttl) {
		t.Errorf("a renews a lease that expired and b took: got true, want false")
	}
}

func testLeaseOneWinner(t *testing.T, url string) {
	const n = 8
	dbs := make([]*DB, 4)
	for i := range dbs {
		dbs[i] = open(t, url)
	}
	for round := range 3 {
		var wg sync.WaitGroup
		got := make([]bool, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() { // ends when the acquisition returns
				defer wg.Done()
				got[i], errs[i] = dbs[i%len(dbs)].AcquireLease(context.Background(), leaseName, fmt.Sprintf("h%d", i), time.Hour)
			}()
		}
		wg.Wait()
		winners := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d: h%d: %v", round, i, errs[i])
			}
			if got[i] {
				winners++
			}
		}
		if winners != 1 {
			t.Errorf("round %d: %d holders acquired the lease at once, want exactly 1", round, winners)
		}
		h := holderOf(t, dbs[0])
		if err := dbs[0].ReleaseLease(context.Background(), leaseName, h); err != nil {
			t.Fatal(err)
		}
	}
}

func testRolloutRequests(t *testing.T, url string) {
	ctx := context.Background()
	asker, primary := open(t, url), open(t, url)
	now := time.Now().UTC().Truncate(time.Microsecond)
	n1, err := asker.RequestRollout(ctx, "r1", "pause", now)
	if err != nil {
		t.Fatal(err)
	}
	n2, err := asker.RequestRollout(ctx, "r1", "abort", now.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if n2 <= n1 {
		t.Errorf("request ids: got %d then %d, want increasing", n1, n2)
	}
	if a, err := asker.RolloutRequestAnswer(ctx, n1); err != nil || a != "" {
		t.Errorf("answer before the primary answered: got %q, %v; want none", a, err)
	}
	list, err := primary.RolloutRequests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []RolloutRequest{{n1, "r1", "pause", now}, {n2, "r1", "abort", now.Add(time.Second)}}
	if fmt.Sprint(list) != fmt.Sprint(want) {
		t.Errorf("requests: got %v, want %v", list, want)
	}
	if err := primary.AnswerRolloutRequest(ctx, n1, "ok", now); err != nil {
		t.Fatal(err)
	}
	if err := primary.AnswerRolloutRequest(ctx, n2, "rollout r1: abort: not possible in this state", now); err != nil {
		t.Fatal(err)
	}
	if list, err := primary.RolloutRequests(ctx); err != nil || len(list) != 0 {
		t.Errorf("requests once answered: got %v, %v; want none", list, err)
	}
	if a, err := asker.RolloutRequestAnswer(ctx, n1); err != nil || a != "ok" {
		t.Errorf("answer 1: got %q, %v; want ok", a, err)
	}
	if a, err := asker.RolloutRequestAnswer(ctx, n2); err != nil || a != "rollout r1: abort: not possible in this state" {
		t.Errorf("answer 2: got %q, %v", a, err)
	}
	// A later answer deletes the answers older than keepAnswers.
	n3, err := asker.RequestRollout(ctx, "r2", "resume", now)
	if err != nil {
		t.Fatal(err)
	}
	if err := primary.AnswerRolloutRequest(ctx, n3, "ok", now.Add(keepAnswers+time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := asker.RolloutRequestAnswer(ctx, n1); !errors.Is(err, ErrNotFound) {
		t.Errorf("an answer older than %v: got %v, want ErrNotFound", keepAnswers, err)
	}
	if err := primary.AnswerRolloutRequest(ctx, 999999, "ok", now); !errors.Is(err, ErrNotFound) {
		t.Errorf("answer to no request: got %v, want ErrNotFound", err)
	}
}

func testRolloutByIDAndStamps(t *testing.T, url string) {
	ctx := context.Background()
	primary, follower := open(t, url), open(t, url)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r1, r2 := testRollout("r1", 30, base), testRollout("r2", 5, base.Add(time.Minute))
	if err := primary.CreateRollout(ctx, r1); err != nil {
		t.Fatal(err)
	}
	if err := follower.CreateRollout(ctx, r2); err != nil {
		t.Fatal(err)
	}
	stamps, err := follower.RolloutStamps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(stamps) != 2 || !stamps["r1"].Equal(r1.Updated) || !stamps["r2"].Equal(r2.Updated) {
		t.Errorf("stamps: got %v, want r1 %v, r2 %v", stamps, r1.Updated, r2.Updated)
	}
	change(r1, 3, base.Add(time.Hour))
	r1.Updated = base.Add(time.Hour)
	if err := primary.SaveRollout(ctx, r1); err != nil {
		t.Fatal(err)
	}
	if stamps, err = follower.RolloutStamps(ctx); err != nil || !stamps["r1"].Equal(r1.Updated) {
		t.Errorf("r1's stamp after a save: got %v (%v), want %v", stamps["r1"], err, r1.Updated)
	}
	got, err := follower.Rollout(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	compareRollouts(t, got, r1)
	if _, err := follower.Rollout(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Rollout of no rollout: got %v, want ErrNotFound", err)
	}
	// Reading one leaves the primary's record of what it wrote alone: its
	// next save writes only what changed (still right either way).
	change(r1, 4, base.Add(2*time.Hour))
	if err := primary.SaveRollout(ctx, r1); err != nil {
		t.Fatal(err)
	}
	compareRollouts(t, loadOne(t, follower, "r1"), r1)
}
