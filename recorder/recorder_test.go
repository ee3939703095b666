package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"switchyard/history"
	"switchyard/internal/testutil"
	"switchyard/store"
)

// t0 is the tests' start, on a minute, in UTC as read back.
var t0 = time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)

// clock is a settable Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time // mu guards now
}

func newClock(t time.Time) *clock { return &clock{now: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// openStore opens a SQLite file of the test's own.
func openStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "x.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newRecorder makes a recorder on st with cfg, flushing only when the test
// asks (Flush, Close) unless cfg says otherwise, on the clock c.
func newRecorder(t *testing.T, cfg Config, st Store, c *clock) *Recorder {
	t.Helper()
	if cfg.FlushEvery == 0 {
		cfg.FlushEvery = time.Hour
	}
	if cfg.PruneEvery == 0 {
		cfg.PruneEvery = time.Hour
	}
	if c != nil {
		cfg.Now = c.Now
	}
	r, err := New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func flush(t *testing.T, r *Recorder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func events(t *testing.T, st Store, dev string) []history.Event {
	t.Helper()
	list, err := st.Events(context.Background(), dev, history.Query{Limit: history.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func points(t *testing.T, st Store, dev string) []history.Point {
	t.Helper()
	list, err := st.Points(context.Background(), dev, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func audit(t *testing.T, st Store) []history.Entry {
	t.Helper()
	list, err := st.AuditLog(context.Background(), history.Query{Limit: history.MaxLimit}, "")
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func led(dev string, at time.Time, i int) history.Event {
	return history.Event{At: at, Device: dev, Kind: history.KindLED, Value: fmt.Sprint(i), By: "alice"}
}

func login(at time.Time, actor string) history.Entry {
	return history.Entry{At: at, Actor: actor, Action: history.ActionLogin, Result: history.ResultOK, Remote: "127.0.0.1:5000"}
}

func TestOrderKept(t *testing.T) {
	st := openStore(t)
	r := newRecorder(t, Config{}, st, newClock(t0))
	// 500 events of b1 in one nanosecond, between other boards', over
	// two flushes; and audit entries in one nanosecond.
	for i := range 500 {
		r.Record(led("b1", t0, i))
		r.Record(led(fmt.Sprintf("x%d", i%7), t0, i))
		r.Audit(login(t0, fmt.Sprint(i)))
		if i == 250 {
			flush(t, r)
		}
	}
	flush(t, r)
	got := events(t, st, "b1")
	if len(got) != 500 {
		t.Fatalf("got %d events, want 500", len(got))
	}
	for i, e := range got {
		if want := fmt.Sprint(499 - i); e.Value != want {
			t.Fatalf("event %d (newest first): got %s, want %s", i, e.Value, want)
		}
	}
	entries := audit(t, st)
	if len(entries) != 500 || entries[0].Actor != "499" || entries[499].Actor != "0" {
		t.Errorf("audit: got %d entries, first %v; want 500, newest first", len(entries), entries[0])
	}
	if got := value(t, r.m.writtenEvents); got != 1000 {
		t.Errorf("written events: got %v, want 1000", got)
	}
	if got := value(t, r.m.writtenAudit); got != 500 {
		t.Errorf("written audit: got %v, want 500", got)
	}
}

// TestCountsSampledOnceAMinute drives a board counting at 1 Hz for two and
// a half minutes, and another that stops: a point a board a minute, the
// last count of it, each written once its minute is over.
func TestCountsSampledOnceAMinute(t *testing.T) {
	st := openStore(t)
	c := newClock(t0)
	r := newRecorder(t, Config{}, st, c)
	for s := 0; s <= 150; s++ {
		at := t0.Add(time.Duration(s) * time.Second)
		r.Count("a", int64(1000+s), at)
		if s < 30 {
			r.Count("b", int64(s), at) // stops after 30 s
		}
	}
	c.Set(t0.Add(150 * time.Second))
	flush(t, r)
	pt := func(dev string, minute int, n int64) history.Point {
		return history.Point{Device: dev, At: t0.Add(time.Duration(minute) * time.Minute), Count: n}
	}
	want := []history.Point{pt("a", 0, 1059), pt("a", 1, 1119)}
	if got := points(t, st, "a"); !reflect.DeepEqual(got, want) {
		t.Errorf("a after 150 s:\n got %v\nwant %v", got, want)
	}
	// b stopped in minute 0, which is over: written at the flush.
	if got, want := points(t, st, "b"), []history.Point{pt("b", 0, 29)}; !reflect.DeepEqual(got, want) {
		t.Errorf("b after 150 s:\n got %v\nwant %v", got, want)
	}
	// Minute 2 is written once it is over, and once only.
	c.Set(t0.Add(3 * time.Minute))
	flush(t, r)
	flush(t, r)
	want = append(want, pt("a", 2, 1150))
	if got := points(t, st, "a"); !reflect.DeepEqual(got, want) {
		t.Errorf("a after 3 min:\n got %v\nwant %v", got, want)
	}
	if got := value(t, r.m.writtenPoints); got != 4 {
		t.Errorf("written points: got %v, want 4 (one a board a minute)", got)
	}
}

// TestCloseFlushes closes a recorder that has everything queued: all of it
// is written, the count of the minute not over yet included.
func TestCloseFlushes(t *testing.T) {
	st := openStore(t)
	c := newClock(t0.Add(30 * time.Second))
	r := newRecorder(t, Config{}, st, c)
	r.Record(led("b1", t0, 1))
	r.Audit(login(t0, "alice"))
	r.Count("b1", 41, t0)
	r.Count("b1", 42, t0.Add(20*time.Second))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := events(t, st, "b1"); len(got) != 1 {
		t.Errorf("events after Close: got %v, want 1", got)
	}
	if got := audit(t, st); len(got) != 1 {
		t.Errorf("audit after Close: got %v, want 1", got)
	}
	if got, want := points(t, st, "b1"), []history.Point{{Device: "b1", At: t0, Count: 42}}; !reflect.DeepEqual(got, want) {
		t.Errorf("points after Close: got %v, want %v (the unfinished minute)", got, want)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
	if err := r.Flush(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close: got %v, want ErrClosed", err)
	}
	// Records after Close are dropped and counted; counts ignored.
	r.Record(led("b1", t0, 2))
	r.Audit(login(t0, "bob"))
	r.Count("b1", 43, t0.Add(time.Hour))
	if got := value(t, r.m.droppedEvents) + value(t, r.m.droppedAudit); got != 2 {
		t.Errorf("dropped after Close: got %v, want 2", got)
	}

	// A restart in the same minute writes the minute again: the newer
	// count replaces it.
	r2 := newRecorder(t, Config{}, st, c)
	r2.Count("b1", 50, t0.Add(40*time.Second))
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := points(t, st, "b1"), []history.Point{{Device: "b1", At: t0, Count: 50}}; !reflect.DeepEqual(got, want) {
		t.Errorf("points after a restart in the minute: got %v, want %v", got, want)
	}
}

func TestQueueBound(t *testing.T) {
	st := openStore(t)
	c := newClock(t0)
	r := newRecorder(t, Config{MaxQueue: 10}, st, c)
	for i := range 8 {
		r.Record(led("b1", t0, i))
	}
	r.Audit(login(t0, "alice"))
	r.Count("b1", 1, t0)
	r.Count("b1", 2, t0.Add(time.Minute)) // minute 0's point: the 10th record
	r.Count("b2", 1, t0)
	r.Count("b2", 2, t0.Add(time.Minute)) // the 11th: dropped
	r.Record(led("b1", t0, 8))            // dropped
	r.Audit(login(t0, "bob"))             // dropped
	if got := r.queueLen(); got != 10 {
		t.Errorf("queued: got %d, want 10", got)
	}
	for _, m := range []struct {
		name string
		got  float64
	}{
		{"events", value(t, r.m.droppedEvents)},
		{"points", value(t, r.m.droppedPoints)},
		{"audit", value(t, r.m.droppedAudit)},
	} {
		if m.got != 1 {
			t.Errorf("dropped %s: got %v, want 1", m.name, m.got)
		}
	}
	flush(t, r)
	if got := r.queueLen(); got != 0 {
		t.Errorf("queued after the flush: got %d, want 0", got)
	}
	// The queue has room again.
	r.Record(led("b1", t0, 9))
	flush(t, r)
	if got := len(events(t, st, "b1")); got != 9 {
		t.Errorf("events: got %d, want 9", got)
	}
}

// TestRetentionPrunes prunes on demand and in the background.
func TestRetentionPrunes(t *testing.T) {
	st := openStore(t)
	now := t0.Add(72 * time.Hour)
	c := newClock(now)
	r := newRecorder(t, Config{Retention: 48 * time.Hour}, st, c)
	old, recent := t0, now.Add(-time.Hour)
	r.Record(led("b1", old, 0))
	r.Record(led("b1", recent, 1))
	r.Audit(login(old, "alice"))
	r.Audit(login(recent, "bob"))
	r.Count("b1", 5, old)
	r.Count("b1", 6, recent)
	flush(t, r)
	n, err := r.Prune(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("Prune: deleted %d, want 3 (an event, a point, an entry)", n)
	}
	if got := events(t, st, "b1"); len(got) != 1 || got[0].Value != "1" {
		t.Errorf("events after Prune: got %v, want the recent one", got)
	}
	if got := audit(t, st); len(got) != 1 || got[0].Actor != "bob" {
		t.Errorf("audit after Prune: got %v, want the recent one", got)
	}
	if got := points(t, st, "b1"); len(got) != 1 || got[0].Count != 6 {
		t.Errorf("points after Prune: got %v, want the recent one", got)
	}
	if got := value(t, r.m.pruned); got != 3 {
		t.Errorf("pruned: got %v, want 3", got)
	}

	// The pruner does it by itself, every PruneEvery: poll the store (no
	// event says a background prune is over).
	rb := newRecorder(t, Config{Retention: 48 * time.Hour, PruneEvery: 20 * time.Millisecond}, st, c)
	rb.Record(led("b2", old, 0))
	flush(t, rb)
	testutil.WaitFor(t, 10*time.Second, testutil.Until("the background prune of b2's old event", func() bool {
		return len(events(t, st, "b2")) == 0
	}))
}

// failingStore is a real store whose writes fail while fail is set.
type failingStore struct {
	Store
	mu   sync.Mutex
	fail bool // mu guards fail
}

func (f *failingStore) setFail(v bool) {
	f.mu.Lock()
	f.fail = v
	f.mu.Unlock()
}

func (f *failingStore) AppendHistory(ctx context.Context, e []history.Event, p []history.Point, a []history.Entry) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return errors.New("disk I/O error")
	}
	return f.Store.AppendHistory(ctx, e, p, a)
}

func TestWriteErrorsRetried(t *testing.T) {
	st := &failingStore{Store: openStore(t), fail: true}
	var logs testutil.Buffer
	r := newRecorder(t, Config{MaxQueue: 5, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, st, newClock(t0))
	r.Record(led("b1", t0, 0))
	r.Record(led("b1", t0, 1))
	if err := r.Flush(context.Background()); err == nil || !strings.Contains(err.Error(), "disk I/O error") {
		t.Fatalf("Flush with a failing store: got %v, want the store's error", err)
	}
	r.Record(led("b1", t0, 2))
	if err := r.Flush(context.Background()); err == nil {
		t.Fatal("second Flush with a failing store: got nil, want an error")
	}
	// The failed batch counts in the bound: 3 held, 2 more fit.
	for i := 3; i < 6; i++ {
		r.Record(led("b1", t0, i))
	}
	if got := value(t, r.m.droppedEvents); got != 1 {
		t.Errorf("dropped while failing: got %v, want 1", got)
	}
	st.setFail(false)
	flush(t, r)
	got := events(t, st, "b1")
	var values []string
	for _, e := range got {
		values = append(values, e.Value)
	}
	if want := "4 3 2 1 0"; strings.Join(values, " ") != want {
		t.Errorf("events after the retry (newest first): got %s, want %s", strings.Join(values, " "), want)
	}
	if got := value(t, r.m.writeErrors); got != 2 {
		t.Errorf("write errors: got %v, want 2", got)
	}
	if got := r.queueLen(); got != 0 {
		t.Errorf("queued after the retry: got %d, want 0", got)
	}
	// The first failure is logged, the second (within a minute) not; the
	// recovery is.
	if n := strings.Count(logs.String(), "history write failed"); n != 1 {
		t.Errorf("logged %d write failures, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "history writes work again") {
		t.Errorf("the recovery is not logged:\n%s", logs.String())
	}
}

// blockingStore is a real store whose writes wait until release is
// closed, saying on started when one begins.
type blockingStore struct {
	Store
	started chan struct{}
	release chan struct{}
}

func (b *blockingStore) AppendHistory(ctx context.Context, e []history.Event, p []history.Point, a []history.Entry) error {
	b.started <- struct{}{}
	<-b.release
	return b.Store.AppendHistory(ctx, e, p, a)
}

// TestRecordDoesNotWaitForWrites records while a write is stuck: Record,
// Count and Audit return, and what they queued is written next.
func TestRecordDoesNotWaitForWrites(t *testing.T) {
	st := &blockingStore{Store: openStore(t), started: make(chan struct{}, 1), release: make(chan struct{})}
	r := newRecorder(t, Config{}, st, newClock(t0))
	r.Record(led("b1", t0, 0))
	flushed := make(chan error, 1)
	go func() { flushed <- r.Flush(context.Background()) }() // ends when the blocked write is released
	testutil.Recv(t, st.started, 10*time.Second, "the first write")
	for i := 1; i <= 500; i++ {
		r.Record(led("b1", t0, i))
		r.Count("b1", int64(i), t0.Add(time.Duration(i)*time.Second))
		r.Audit(login(t0, "alice"))
	}
	close(st.release)
	if err := testutil.Recv(t, flushed, 10*time.Second, "the first flush"); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(events(t, st, "b1")); got != 501 {
		t.Errorf("events: got %d, want 501", got)
	}
	if got := len(points(t, st, "b1")); got != 9 {
		t.Errorf("points: got %d, want 9 (500 s of counts, a point a minute)", got)
	}
	if got := len(audit(t, st)); got != 500 {
		t.Errorf("audit: got %d, want 500", got)
	}
}

// TestFlushTicker leaves the flushes to the recorder's own ticker, and
// reads the metrics as /metrics serves them.
func TestFlushTicker(t *testing.T) {
	st := openStore(t)
	reg := prometheus.NewRegistry()
	r := newRecorder(t, Config{FlushEvery: 10 * time.Millisecond, Registerer: reg}, st, nil)
	r.Record(led("b1", time.Now(), 0))
	testutil.WaitFor(t, 10*time.Second, testutil.Until("the ticker's flush", func() bool {
		return len(events(t, st, "b1")) == 1
	}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case m.GetHistogram() != nil:
				got[name] = fmt.Sprintf("count>0 %v", m.GetHistogram().GetSampleCount() > 0)
			case m.GetGauge() != nil:
				got[name] = fmt.Sprint(m.GetGauge().GetValue())
			default:
				got[name] = fmt.Sprint(m.GetCounter().GetValue())
			}
		}
	}
	want := map[string]string{
		"switchyard_history_written_total{kind=events}": "1",
		"switchyard_history_written_total{kind=points}": "0",
		"switchyard_history_written_total{kind=audit}":  "0",
		"switchyard_history_dropped_total{kind=events}": "0",
		"switchyard_history_dropped_total{kind=points}": "0",
		"switchyard_history_dropped_total{kind=audit}":  "0",
		"switchyard_history_write_errors_total":         "0",
		"switchyard_history_pruned_total":               "0",
		"switchyard_history_flush_seconds":              "count>0 true",
		"switchyard_history_queued":                     "0",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("metrics:\n got %v\nwant %v", got, want)
	}
}

// value is a counter's value, as a registry gathers it.
func value(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs[0].GetMetric()[0].GetCounter().GetValue()
}

func TestConfigDefaults(t *testing.T) {
	r, err := New(Config{}, openStore(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.cfg.FlushEvery != 250*time.Millisecond || r.cfg.Retention != 720*time.Hour ||
		r.cfg.PruneEvery != time.Hour || r.cfg.MaxQueue != 100_000 || r.cfg.Now == nil || r.log == nil {
		t.Errorf("defaults: got %+v", r.cfg)
	}
	if _, err := New(Config{}, nil); err == nil {
		t.Error("New without a store: got nil, want an error")
	}
}

// TestOnlineOfflineOnlyWhenChanged: a repeated online or offline says
// nothing new, across a restart too (the broker marks every board offline
// at start, those offline already included); an offline of a board never
// online neither.
func TestOnlineOfflineOnlyWhenChanged(t *testing.T) {
	st := openStore(t)
	ev := func(dev string, k history.Kind, v string, s int) history.Event {
		return history.Event{At: t0.Add(time.Duration(s) * time.Second), Device: dev, Kind: k, Value: v}
	}
	r := newRecorder(t, Config{}, st, newClock(t0))
	r.Record(ev("a", history.KindOnline, "", 1))
	r.Record(ev("a", history.KindOnline, "", 2)) // a takeover
	r.Record(ev("b", history.KindOnline, "", 3))
	r.Record(ev("b", history.KindOffline, history.OfflineWill, 4))
	r.Record(ev("c", history.KindOffline, history.OfflineRestart, 5)) // never online
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// The control plane restarts: a was online, b was not.
	r = newRecorder(t, Config{}, st, newClock(t0))
	r.Record(ev("a", history.KindOffline, history.OfflineRestart, 10))
	r.Record(ev("b", history.KindOffline, history.OfflineRestart, 10))
	r.Record(ev("b", history.KindOnline, "", 11))
	flush(t, r)
	for dev, want := range map[string][]string{ // newest first
		"a": {"offline restart", "online "},
		"b": {"online ", "offline will", "online "},
		"c": nil,
	} {
		var got []string
		for _, e := range events(t, st, dev) {
			got = append(got, string(e.Kind)+" "+e.Value)
		}
		if !slices.Equal(got, want) {
			t.Errorf("board %s, newest first: got %q, want %q", dev, got, want)
		}
	}
}

// role is a Config.Role the test switches.
type role struct {
	mu sync.Mutex
	on bool // mu guards on
}

func (r *role) Primary() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.on
}

func (r *role) set(on bool) {
	r.mu.Lock()
	r.on = on
	r.mu.Unlock()
}

// TestOnlyThePrimaryRecordsBoards runs two recorders on one database, as
// two control planes sharing it do, both seeing every board message:
// board events and counts are recorded once, by the primary of the
// moment; each records its own commands and audit entries; a follower
// that becomes the primary does not record again an online the other
// recorded.
func TestOnlyThePrimaryRecordsBoards(t *testing.T) {
	st := openStore(t)
	roleA, roleB := &role{on: true}, &role{}
	c := newClock(t0)
	a := newRecorder(t, Config{Role: roleA}, st, c)
	b := newRecorder(t, Config{Role: roleB}, st, c)
	both := func(e history.Event) { a.Record(e); b.Record(e) }
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

	both(history.Event{At: at(1), Device: "x", Kind: history.KindOnline})
	both(history.Event{At: at(2), Device: "x", Kind: history.KindLED, Value: "ON", By: "board"})
	a.Record(history.Event{At: at(3), Device: "x", Kind: history.KindCommand, Value: "ON applied", By: "alice"})
	b.Record(history.Event{At: at(4), Device: "x", Kind: history.KindCommand, Value: "OFF applied", By: "bob"})
	a.Audit(login(at(3), "alice"))
	b.Audit(login(at(4), "bob"))
	for s := range 3 { // counts of two minutes: the first minute's is a point
		a.Count("x", int64(s), at(s*40))
		b.Count("x", int64(s), at(s*40))
	}
	c.Set(at(200))
	flush(t, a)
	flush(t, b)

	// b takes over (a died): it does not record x's online again, and
	// records what happens next.
	roleA.set(false)
	roleB.set(true)
	both(history.Event{At: at(201), Device: "x", Kind: history.KindOnline}) // a retained status replayed
	both(history.Event{At: at(202), Device: "x", Kind: history.KindOffline, Value: history.OfflineWill})
	flush(t, a)
	flush(t, b)

	var got []string
	for _, e := range events(t, st, "x") {
		got = append(got, string(e.Kind)+" "+e.Value+" "+e.By)
	}
	want := []string{"offline will ", "command OFF applied bob", "command ON applied alice", "led ON board", "online  "}
	if !slices.Equal(got, want) {
		t.Errorf("x's events, newest first: got %q, want %q", got, want)
	}
	if pts := points(t, st, "x"); len(pts) != 2 {
		t.Errorf("x's points: got %v, want 2 (one a minute, recorded once)", pts)
	}
	if n := len(audit(t, st)); n != 2 {
		t.Errorf("audit entries: got %d, want 2 (each control plane's own)", n)
	}
}
