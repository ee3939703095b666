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

	"switchyard/internal/testutil"
	"switchyard/rollout"
)

// writerEnv, when set to a database URL, turns the test binary into the
// writer that TestKill9 kills (see TestMain).
const writerEnv = "STORE_TEST_WRITER"

func TestMain(m *testing.M) {
	if url := os.Getenv(writerEnv); url != "" {
		writer(url)
		return // never: writer writes until it is killed
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
		want := committed + 10
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), writerEnv+"="+url)
		p, m, err := testutil.Start(t, cmd, regexp.MustCompile(`committed (`+strconv.Itoa(want)+`)$`), 60*time.Second)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		p.Kill() // SIGKILL, and waits until it has exited
		committed, _ = strconv.Atoi(m[1])
		// Killed, it never checkpointed: Open recovers from the WAL.
		if info, err := os.Stat(sqlitePath(url) + "-wal"); err != nil || info.Size() == 0 {
			t.Errorf("round %d: the WAL after kill -9: %v, %v; want it left with the transactions", round, info, err)
		}

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
