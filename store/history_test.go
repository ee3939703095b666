package store

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"switchyard/history"
)

// h0 is the history tests' start, in UTC as read back.
var h0 = time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)

func ev(dev string, at time.Duration, kind history.Kind, value, by string) history.Event {
	return history.Event{At: h0.Add(at), Device: dev, Kind: kind, Value: value, By: by}
}

func pt(dev string, minute int, count int64) history.Point {
	return history.Point{Device: dev, At: h0.Add(time.Duration(minute) * time.Minute), Count: count}
}

func entry(at time.Duration, actor string, action history.Action, target string, result history.Result) history.Entry {
	return history.Entry{At: h0.Add(at), Actor: actor, Action: action, Target: target, Result: result, Remote: "127.0.0.1:5000"}
}

func testHistoryEvents(t *testing.T, url string) {
	ctx := context.Background()
	db := open(t, url)
	if has, err := db.HasHistory(ctx, "b1"); err != nil || has {
		t.Errorf("HasHistory of a new database: got %v, %v; want false", has, err)
	}
	// Two events in the same nanosecond keep their order; "by" may be
	// empty; another board's events stay apart.
	first := []history.Event{
		ev("b1", 0, history.KindOnline, "", history.ByBoard),
		ev("b1", time.Second, history.KindLED, "ON", "alice"),
		ev("b1", time.Second, history.KindCommand, "TOGGLE applied", "alice"),
		ev("b2", time.Second, history.KindOnline, "", ""),
	}
	if err := db.AppendHistory(ctx, first, nil, nil); err != nil {
		t.Fatal(err)
	}
	second := []history.Event{
		ev("b1", time.Minute, history.KindOffline, history.OfflineWill, ""),
		ev("b1", time.Minute+time.Nanosecond, history.KindForgotten, "", "bob"),
	}
	if err := db.AppendHistory(ctx, second, nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		q    history.Query
		want []history.Event
	}{
		{"all, newest first", history.Query{}, []history.Event{second[1], second[0], first[2], first[1], first[0]}},
		{"limit", history.Query{Limit: 2}, []history.Event{second[1], second[0]}},
		{"since is inclusive", history.Query{Since: h0.Add(time.Second)}, []history.Event{second[1], second[0], first[2], first[1]}},
		{"until is exclusive", history.Query{Until: h0.Add(time.Minute)}, []history.Event{first[2], first[1], first[0]}},
		{"a window", history.Query{Since: h0.Add(time.Second), Until: h0.Add(time.Minute + 1), Limit: 10}, []history.Event{second[0], first[2], first[1]}},
		{"nothing in the window", history.Query{Since: h0.Add(time.Hour)}, []history.Event{}},
	} {
		got, err := db.Events(ctx, "b1", tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Events:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
	got, err := db.Events(ctx, "b3", history.Query{})
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("Events of a board without history: got %#v, %v; want an empty list", got, err)
	}
	for dev, want := range map[string]bool{"b1": true, "b2": true, "b3": false} {
		if has, err := db.HasHistory(ctx, dev); err != nil || has != want {
			t.Errorf("HasHistory(%s): got %v, %v; want %v", dev, has, err, want)
		}
	}
}

func testHistoryPoints(t *testing.T, url string) {
	ctx := context.Background()
	db := open(t, url)
	// Out of order, and minute 2 twice in one batch: the last one wins.
	if err := db.AppendHistory(ctx, nil, []history.Point{pt("b1", 2, 20), pt("b1", 0, 1), pt("b2", 0, 7), pt("b1", 2, 21), pt("b1", 1, 10)}, nil); err != nil {
		t.Fatal(err)
	}
	// A point written again (a restart in the same minute) replaces it.
	if err := db.AppendHistory(ctx, nil, []history.Point{pt("b1", 1, 11), pt("b1", 3, 30)}, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		since, until time.Time
		want         []history.Point
	}{
		{"all, oldest first", time.Time{}, time.Time{}, []history.Point{pt("b1", 0, 1), pt("b1", 1, 11), pt("b1", 2, 21), pt("b1", 3, 30)}},
		{"since is inclusive", h0.Add(time.Minute), time.Time{}, []history.Point{pt("b1", 1, 11), pt("b1", 2, 21), pt("b1", 3, 30)}},
		{"until is exclusive", time.Time{}, h0.Add(2 * time.Minute), []history.Point{pt("b1", 0, 1), pt("b1", 1, 11)}},
		{"nothing", h0.Add(time.Hour), time.Time{}, []history.Point{}},
	} {
		got, err := db.Points(ctx, "b1", tc.since, tc.until)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Points:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
	// Points alone are history.
	if has, err := db.HasHistory(ctx, "b2"); err != nil || !has {
		t.Errorf("HasHistory of a board with points only: got %v, %v; want true", has, err)
	}
}

func testAuditLog(t *testing.T, url string) {
	ctx := context.Background()
	db := open(t, url)
	log := []history.Entry{
		entry(0, "mallory", history.ActionLogin, "", history.ResultDenied),
		entry(0, "alice", history.ActionLogin, "", history.ResultOK),
		entry(time.Second, "alice", history.ActionCommand, "b1", history.ResultOK),
		entry(time.Minute, "bob", history.ActionForget, "b1", history.ResultOK),
		entry(time.Hour, "alice", history.ActionLogout, "", history.ResultOK),
	}
	log[4].Remote = "" // not every entry has an address
	if err := db.AppendHistory(ctx, nil, nil, log[:2]); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendHistory(ctx, nil, nil, log[2:]); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		q     history.Query
		actor string
		want  []history.Entry
	}{
		{"all, newest first", history.Query{}, "", []history.Entry{log[4], log[3], log[2], log[1], log[0]}},
		{"limit", history.Query{Limit: 1}, "", []history.Entry{log[4]}},
		{"an actor", history.Query{}, "alice", []history.Entry{log[4], log[2], log[1]}},
		{"an actor since", history.Query{Since: h0.Add(time.Second)}, "alice", []history.Entry{log[4], log[2]}},
		{"a window", history.Query{Since: h0.Add(time.Second), Until: h0.Add(time.Hour)}, "", []history.Entry{log[3], log[2]}},
		{"an actor never seen", history.Query{}, "eve", []history.Entry{}},
	} {
		got, err := db.AuditLog(ctx, tc.q, tc.actor)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: AuditLog:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

// testAppendAtomic writes a batch that fails in its last part: none of it
// is kept.
func testAppendAtomic(t *testing.T, url string) {
	ctx := context.Background()
	db := open(t, url)
	if _, err := db.db.Exec(`DROP TABLE audit_log`); err != nil {
		t.Fatal(err)
	}
	err := db.AppendHistory(ctx, []history.Event{ev("b1", 0, history.KindOnline, "", "")}, []history.Point{pt("b1", 0, 1)},
		[]history.Entry{entry(0, "alice", history.ActionLogin, "", history.ResultOK)})
	if err == nil {
		t.Fatal("AppendHistory without an audit table: got nil, want an error")
	}
	if has, err := db.HasHistory(ctx, "b1"); err != nil || has {
		t.Errorf("after a failed append: HasHistory got %v, %v; want false (nothing of the batch kept)", has, err)
	}
}

// testHistoryBatches writes more rows than one INSERT holds, in order.
func testHistoryBatches(t *testing.T, url string) {
	ctx := context.Background()
	db := open(t, url)
	const n = 2*historyBatch + 17
	var events []history.Event
	var points []history.Point
	var audit []history.Entry
	for i := range n {
		events = append(events, ev("b1", 0, history.KindLED, fmt.Sprint(i), "alice")) // one time: order by id
		points = append(points, pt("b1", i, int64(i)))
		audit = append(audit, entry(0, "alice", history.ActionCommand, fmt.Sprint(i), history.ResultOK))
	}
	if err := db.AppendHistory(ctx, events, points, audit); err != nil {
		t.Fatal(err)
	}
	got, err := db.Events(ctx, "b1", history.Query{Limit: history.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("Events: got %d, want %d", len(got), n)
	}
	for i, e := range got {
		if want := fmt.Sprint(n - 1 - i); e.Value != want {
			t.Fatalf("event %d: got value %s, want %s (newest first, in recorded order)", i, e.Value, want)
		}
	}
	pts, err := db.Points(ctx, "b1", time.Time{}, time.Time{})
	if err != nil || len(pts) != n || pts[n-1].Count != n-1 {
		t.Errorf("Points: got %d, %v; want %d ending with count %d", len(pts), err, n, n-1)
	}
	es, err := db.AuditLog(ctx, history.Query{Limit: history.MaxLimit}, "")
	if err != nil || len(es) != n || es[0].Target != fmt.Sprint(n-1) {
		t.Errorf("AuditLog: got %d, %v; want %d, newest first", len(es), err, n)
	}
}

func testLastOnline(t *testing.T, url string) {
	ctx := context.Background()
	db := open(t, url)
	got, err := db.LastOnline(ctx)
	if err != nil || len(got) != 0 {
		t.Errorf("LastOnline of a new database: got %v, %v; want none", got, err)
	}
	events := []history.Event{
		ev("b1", 0, history.KindOnline, "", ""),
		ev("b1", time.Second, history.KindOffline, history.OfflineWill, ""),
		ev("b1", 2*time.Second, history.KindLED, "ON", ""), // not online or offline: skipped
		ev("b2", 0, history.KindOffline, history.OfflineClean, ""),
		ev("b2", time.Second, history.KindOnline, "", ""), // same time as the next: the later one wins
		ev("b2", time.Second, history.KindOffline, history.OfflineRestart, ""),
		ev("b2", time.Second, history.KindOnline, "", ""),
		ev("b3", 0, history.KindLED, "OFF", ""), // never online: absent
		ev("b4", 0, history.KindOnline, "", ""),
		ev("b4", time.Minute, history.KindForgotten, "", "alice"),
	}
	// Out of time order across batches: the newest by time wins.
	if err := db.AppendHistory(ctx, []history.Event{ev("b1", 3*time.Second, history.KindOnline, "", "")}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendHistory(ctx, events, nil, nil); err != nil {
		t.Fatal(err)
	}
	got, err = db.LastOnline(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]history.Kind{"b1": history.KindOnline, "b2": history.KindOnline, "b4": history.KindOnline}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LastOnline: got %v, want %v", got, want)
	}
}

func testPruneHistory(t *testing.T, url string) {
	ctx := context.Background()
	db := open(t, url)
	// b1 has more old rows than one DELETE removes; b2 has only new ones;
	// b3 only old ones.
	const old = pruneBatch + 10
	var events []history.Event
	var points []history.Point
	var audit []history.Entry
	for i := range old {
		at := time.Duration(i) * time.Millisecond
		events = append(events, ev("b1", at, history.KindLED, "ON", ""))
		points = append(points, history.Point{Device: "b1", At: h0.Add(at), Count: int64(i)})
		audit = append(audit, entry(at, "alice", history.ActionCommand, "b1", history.ResultOK))
	}
	events = append(events, ev("b3", 0, history.KindOnline, "", ""))
	points = append(points, pt("b3", 0, 1))
	cut := h0.Add(time.Hour)
	keep := []history.Event{ev("b1", time.Hour, history.KindOffline, history.OfflineWill, ""), ev("b2", 2*time.Hour, history.KindOnline, "", "")}
	keepPts := []history.Point{pt("b1", 60, 5), pt("b2", 120, 6)}
	keepAudit := []history.Entry{entry(time.Hour, "bob", history.ActionLogin, "", history.ResultOK)}
	if err := db.AppendHistory(ctx, append(events, keep...), append(points, keepPts...), append(audit, keepAudit...)); err != nil {
		t.Fatal(err)
	}
	n, err := db.PruneHistory(ctx, cut)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(3*old + 2); n != want {
		t.Errorf("PruneHistory: deleted %d rows, want %d", n, want)
	}
	for _, tc := range []struct {
		dev  string
		want []history.Event
		pts  []history.Point
	}{
		{"b1", keep[:1], keepPts[:1]},
		{"b2", keep[1:], keepPts[1:]},
		{"b3", []history.Event{}, []history.Point{}},
	} {
		got, err := db.Events(ctx, tc.dev, history.Query{Limit: history.MaxLimit})
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Events after prune: got %+v, %v; want %+v", tc.dev, got, err, tc.want)
		}
		pts, err := db.Points(ctx, tc.dev, time.Time{}, time.Time{})
		if err != nil || !reflect.DeepEqual(pts, tc.pts) {
			t.Errorf("%s: Points after prune: got %+v, %v; want %+v", tc.dev, pts, err, tc.pts)
		}
	}
	if has, err := db.HasHistory(ctx, "b3"); err != nil || has {
		t.Errorf("HasHistory of a board whose history was all pruned: got %v, %v; want false", has, err)
	}
	es, err := db.AuditLog(ctx, history.Query{Limit: history.MaxLimit}, "")
	if err != nil || !reflect.DeepEqual(es, keepAudit) {
		t.Errorf("AuditLog after prune: got %+v, %v; want %+v", es, err, keepAudit)
	}
	if n, err := db.PruneHistory(ctx, cut); err != nil || n != 0 {
		t.Errorf("PruneHistory again: got %d, %v; want 0", n, err)
	}

	// A done context stops it.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := db.PruneHistory(cancelled, h0.Add(24*time.Hour)); err == nil {
		t.Error("PruneHistory with a cancelled context: got nil, want an error")
	}
}

// testHistoryText stores text PostgreSQL's text type refuses, mended.
func testHistoryText(t *testing.T, url string) {
	ctx := context.Background()
	db := open(t, url)
	bad := "fw\xff1.2\x00.0"
	e := ev("b1", 0, history.KindInfo, bad, "")
	a := entry(0, "mal\xfelory\x00", history.ActionLogin, "", history.ResultDenied)
	if err := db.AppendHistory(ctx, []history.Event{e}, nil, []history.Entry{a}); err != nil {
		t.Fatalf("AppendHistory with invalid UTF-8 and NUL: %v", err)
	}
	got, err := db.Events(ctx, "b1", history.Query{})
	if want := "fw\uFFFD1.2.0"; err != nil || len(got) != 1 || got[0].Value != want {
		t.Errorf("Events: got %+v, %v; want the value %q", got, err, want)
	}
	es, err := db.AuditLog(ctx, history.Query{}, "")
	if want := "mal\uFFFDlory"; err != nil || len(es) != 1 || es[0].Actor != want {
		t.Errorf("AuditLog: got %+v, %v; want the actor %q", es, err, want)
	}
}
