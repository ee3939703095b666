package store

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"switchyard/history"
	"switchyard/internal/testutil"
	"switchyard/rollout"
)

// writerEnv and historyWriterEnv, when set to a database URL, turn the
// test binary into the writer that TestKill9 or TestKill9History kills
// (see TestMain).
const (
	writerEnv        = "STORE_TEST_WRITER"
	historyWriterEnv = "STORE_TEST_HISTORY_WRITER"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(writerEnv); url != "" {
		writer(url)
		return // never: writer writes until it is killed
	}
	if url := os.Getenv(historyWriterEnv); url != "" {
		historyWriter(url)
		return // never: historyWriter writes until it is killed
	}
	os.Exit(m.Run())
}

// writer creates rollouts of 200 boards and saves each once more with a
// changed board, in a loop, and says on stderr how many rollouts are
// committed after each: "committed N". It runs until killed; it exits 1
// at its first error.
func writer(url string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "writer:", err)
		os.Exit(1)
	}
	ctx := context.Background()
	db, err := Open(ctx, url, Options{})
	if err != nil {
		fail(err)
	}
	have, err := db.Rollouts(ctx)
	if err != nil {
		fail(err)
	}
	for i := len(have) + 1; ; i++ {
		r := testRollout(fmt.Sprintf("r%06d", i), 200, time.Unix(1700000000+int64(i), 0))
		if err := db.CreateRollout(ctx, r); err != nil {
			fail(err)
		}
		change(r, i%200, time.Now())
		if err := db.SaveRollout(ctx, r); err != nil {
			fail(err)
		}
		fmt.Fprintf(os.Stderr, "committed %d\n", i)
	}
}

// TestKill9 kills a process writing to a SQLite database with SIGKILL
// (three times, the next writer going on where the last one was killed):
// after each, the database opens, passes SQLite's integrity check and has
// every rollout the writer said it had committed, whole.
func TestKill9(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "switchyard.db")
	committed := 0
	for round := range 3 {
		// The writer's own line says when it has committed 10 more: an
		// event to wait for, so no sleep. It is killed while it writes on.
		committed = killWriter(t, round, writerEnv, url, "committed", committed+10)
		db := openIntact(t, round, url)
		rs, err := db.Rollouts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// A kill -9 loses nothing committed: the kernel still writes what
		// the process handed it.
		if len(rs) < committed {
			t.Errorf("round %d: %d rollouts after kill -9, want at least the %d committed", round, len(rs), committed)
		}
		for _, r := range rs {
			n := 0
			for _, w := range r.Waves {
				n += len(w.Boards)
			}
			if n != 200 || r.Counts[rollout.BoardPending]+r.Counts[rollout.BoardWaiting] == 0 {
				t.Errorf("round %d: rollout %s has %d boards (counts %v), want 200 in every state", round, r.ID, n, r.Counts)
				break
			}
		}
		t.Logf("round %d: killed after %d committed, %d found", round, committed, len(rs))
		committed = len(rs)
		db.Close()
	}
}

// killBoards is how many boards each batch of historyWriter has an event
// and a point of.
const killBoards = 100

// historyWriter appends history batches as the recorder's flushes do,
// numbered on from the last one the database has: batch i is an event
// (value i) and a count point (at minute i) of each of killBoards boards
// and an audit entry (target i). It says on stderr after each commit
// "batch i". It runs until killed; it exits 1 at its first error.
func historyWriter(url string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "history writer:", err)
		os.Exit(1)
	}
	ctx := context.Background()
	db, err := Open(ctx, url, Options{})
	if err != nil {
		fail(err)
	}
	var last int
	if err := db.db.QueryRow("SELECT COALESCE(MAX(CAST(target AS INTEGER)), 0) FROM audit_log").Scan(&last); err != nil {
		fail(err)
	}
	for i := last + 1; ; i++ {
		events := make([]history.Event, 0, killBoards)
		points := make([]history.Point, 0, killBoards)
		for b := range killBoards {
			dev := fmt.Sprintf("board-%03d", b)
			events = append(events, ev(dev, time.Duration(i)*time.Second, history.KindLED, strconv.Itoa(i), "alice"))
			points = append(points, pt(dev, i, int64(i)))
		}
		audit := []history.Entry{entry(time.Duration(i)*time.Second, "alice", history.ActionCommand, strconv.Itoa(i), history.ResultOK)}
		if err := db.AppendHistory(ctx, events, points, audit); err != nil {
			fail(err)
		}
		fmt.Fprintf(os.Stderr, "batch %d\n", i)
	}
}

// TestKill9History kills a process appending history batches to a SQLite
// database with SIGKILL, three times: after each, the database opens,
// passes SQLite's integrity check and holds every batch the writer said it
// had committed, each whole (every board's event and point, and the audit
// entry), and no part of any other.
func TestKill9History(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "switchyard.db")
	committed := 0
	for round := range 3 {
		committed = killWriter(t, round, historyWriterEnv, url, "batch", committed+20)
		db := openIntact(t, round, url)
		found := checkHistoryBatches(t, db, round)
		if found < committed {
			t.Errorf("round %d: %d batches after kill -9, want at least the %d committed", round, found, committed)
		}
		t.Logf("round %d: killed after batch %d, %d found", round, committed, found)
		committed = found
		db.Close()
	}
}

// checkHistoryBatches checks that the batches historyWriter wrote are
// whole and numbered 1 to n, and returns n.
func checkHistoryBatches(t *testing.T, db *DB, round int) int {
	t.Helper()
	ctx := context.Background()
	audit, err := db.AuditLog(ctx, history.Query{Limit: history.MaxLimit}, "")
	if err != nil {
		t.Fatal(err)
	}
	n := len(audit)
	for i, e := range audit {
		if want := strconv.Itoa(n - i); e.Target != want {
			t.Fatalf("round %d: audit entry %d: got target %s, want %s (batches 1 to %d, newest first)", round, i, e.Target, want, n)
		}
	}
	for b := range killBoards {
		dev := fmt.Sprintf("board-%03d", b)
		events, err := db.Events(ctx, dev, history.Query{Limit: history.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		points, err := db.Points(ctx, dev, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != n || len(points) != n {
			t.Fatalf("round %d: %s has %d events and %d points, want %d of each (one a batch)", round, dev, len(events), len(points), n)
		}
		for i := range n {
			if events[i].Value != strconv.Itoa(n-i) || points[i].Count != int64(i+1) {
				t.Fatalf("round %d: %s: event %d %q, point %d count %d; want batch %d and %d", round, dev, i, events[i].Value, i, points[i].Count, n-i, i+1)
			}
		}
	}
	return n
}

// killWriter starts the test binary as a writer (env set to url), waits
// for its line "<word> n" with n at least want, kills it with SIGKILL and
// returns that n: what the writer had committed when killed.
func killWriter(t *testing.T, round int, env, url, word string, want int) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env+"="+url)
	p, m, err := testutil.Start(t, cmd, regexp.MustCompile(word+` (`+strconv.Itoa(want)+`)$`), 60*time.Second)
	if err != nil {
		t.Fatalf("round %d: %v", round, err)
	}
	p.Kill() // SIGKILL, and waits until it has exited
	n, _ := strconv.Atoi(m[1])
	// Killed, it never checkpointed: Open recovers from the WAL.
	if info, err := os.Stat(sqlitePath(url) + "-wal"); err != nil || info.Size() == 0 {
		t.Errorf("round %d: the WAL after kill -9: %v, %v; want it left with the transactions", round, info, err)
	}
	return n
}

// openIntact opens the database a writer was killed on and checks it
// passes SQLite's integrity check.
func openIntact(t *testing.T, round int, url string) *DB {
	t.Helper()
	db, err := Open(context.Background(), url, Options{})
	if err != nil {
		t.Fatalf("round %d: Open after kill -9: %v", round, err)
	}
	var check string
	if err := db.db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil {
		t.Fatal(err)
	}
	if check != "ok" {
		t.Errorf("round %d: PRAGMA integrity_check: got %q, want ok", round, check)
	}
	return db
}
