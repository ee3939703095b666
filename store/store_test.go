package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchyard/internal/testutil"
	"switchyard/rollout"
)

// dialectCase is a database the suite runs against: newURL returns the URL
// of a new, empty database for one test.
type dialectCase struct {
	name   string
	newURL func(t *testing.T) string
}

func sqliteCase() dialectCase {
	return dialectCase{"sqlite", func(t *testing.T) string {
		// A directory that does not exist yet: Open creates it.
		return "sqlite:" + filepath.Join(t.TempDir(), "state", "switchyard.db")
	}}
}

// postgresCase starts one PostgreSQL server for t and makes a new database
// on it for each test.
func postgresCase(t *testing.T) dialectCase {
	base := testutil.StartPostgres(t)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	var n atomic.Int64
	return dialectCase{"postgres", func(t *testing.T) string {
		name := fmt.Sprintf("test%d", n.Add(1))
		if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + name
		return u.String()
	}}
}

// suite is every test that runs against each dialect.
var suite = []struct {
	name string
	f    func(t *testing.T, url string)
}{
	{"ReopenKeepsData", testReopenKeepsData},
	{"NewerSchemaRefused", testNewerSchemaRefused},
	{"LaterMigrationApplied", testLaterMigrationApplied},
	{"Firmware", testFirmwareCRUD},
	{"RolloutRoundTrip1000", testRolloutRoundTrip1000},
	{"RolloutsNewestFirst", testRolloutsNewestFirst},
	{"Concurrent", testConcurrent},
	{"ConcurrentOpen", testConcurrentOpen},
	{"DeviceMeta", testDeviceMeta},
	{"DeviceMetaMigratedFromIssue12", testDeviceMetaMigrated},
	{"HistoryEvents", testHistoryEvents},
	{"HistoryPoints", testHistoryPoints},
	{"AuditLog", testAuditLog},
	{"AppendAtomic", testAppendAtomic},
	{"HistoryBatches", testHistoryBatches},
	{"LastOnline", testLastOnline},
	{"PruneHistory", testPruneHistory},
	{"HistoryText", testHistoryText},
	{"Accounts", testAccounts},
	{"Boards", testBoards},
	{"AccountsMigratedFromIssue13", testAccountsMigrated},
	{"Secret", testSecret},
	{"SecretConcurrentOpeners", testSecretConcurrentOpeners},
	{"RevokedSessions", testRevokedSessions},
	{"Lease", testLease},
	{"LeaseExpires", testLeaseExpires},
	{"LeaseOneWinner", testLeaseOneWinner},
	{"RolloutRequests", testRolloutRequests},
	{"RolloutByIDAndStamps", testRolloutByIDAndStamps},
}

func TestSQLite(t *testing.T) { runSuite(t, sqliteCase()) }

func TestPostgres(t *testing.T) { runSuite(t, postgresCase(t)) }

func runSuite(t *testing.T, d dialectCase) {
	for _, tc := range suite {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, d.newURL(t)) })
	}
}

func open(t testing.TB, url string) *DB {
	t.Helper()
	db, err := Open(context.Background(), url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func schemaVersion(t *testing.T, db *DB) int {
	t.Helper()
	var v int
	if err := db.db.QueryRow("SELECT MAX(version) FROM schema_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func testReopenKeepsData(t *testing.T, url string) {
	ctx := context.Background()
	db := open(t, url)
	if got := schemaVersion(t, db); got != len(migrations) {
		t.Errorf("schema version: got %d, want %d", got, len(migrations))
	}
	fw := firmwareN(0)
	if err := db.AddFirmware(ctx, fw); err != nil {
		t.Fatal(err)
	}
	r := testRollout("r1", 20, time.Unix(1700000000, 0))
	if err := db.CreateRollout(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}

	db = open(t, url)
	if got := schemaVersion(t, db); got != len(migrations) {
		t.Errorf("schema version after reopen: got %d, want %d", got, len(migrations))
	}
	got, err := db.Firmware(ctx, fw.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, fw) {
		t.Errorf("firmware after reopen: got %+v, want %+v", got, fw)
	}
	rs, err := db.Rollouts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("rollouts after reopen: got %d, want 1", len(rs))
	}
	compareRollouts(t, rs[0], r)
}

func testNewerSchemaRefused(t *testing.T, url string) {
	db := open(t, url)
	if _, err := db.db.Exec(db.d.q("INSERT INTO schema_version (version, name, applied) VALUES (?, ?, ?)"),
		len(migrations)+2, "from the future", time.Now().UnixNano()); err != nil {
		t.Fatal(err)
	}
	db.Close()

	_, err := Open(context.Background(), url, Options{})
	var se *SchemaError
	if !errors.As(err, &se) {
		t.Fatalf("Open of a newer database: got %v, want a *SchemaError", err)
	}
	if se.Found != len(migrations)+2 || se.Known != len(migrations) {
		t.Errorf("SchemaError: got found %d known %d, want %d and %d", se.Found, se.Known, len(migrations)+2, len(migrations))
	}
	want := fmt.Sprintf("database %s has schema version %d, newer than this controlplane (%d): upgrade controlplane",
		redact(url), len(migrations)+2, len(migrations))
	if err.Error() != want {
		t.Errorf("error:\n got %s\nwant %s", err, want)
	}
}

func testLaterMigrationApplied(t *testing.T, url string) {
	ctx := context.Background()
	db := open(t, url)
	if err := db.AddFirmware(ctx, firmwareN(1)); err != nil {
		t.Fatal(err)
	}
	db.Close()

	// A later binary adds a step: the database gets it at the next Open,
	// once, and keeps its rows.
	saved := migrations
	t.Cleanup(func() { migrations = saved })
	migrations = append(saved[:len(saved):len(saved)], migration{
		name:  "test: a later table",
		steps: []string{`CREATE TABLE later (id {int64} PRIMARY KEY, data {blob})`},
	})
	for range 2 {
		db = open(t, url)
		if got := schemaVersion(t, db); got != len(migrations) {
			t.Errorf("schema version: got %d, want %d", got, len(migrations))
		}
		if _, err := db.db.Exec(db.d.q("INSERT INTO later (id, data) VALUES (?, ?)"), time.Now().UnixNano(), []byte{1}); err != nil {
			t.Errorf("the later table: %v", err)
		}
		if _, err := db.Firmware(ctx, firmwareN(1).SHA256); err != nil {
			t.Errorf("firmware after the migration: %v", err)
		}
		db.Close()
	}
}

// firmwareN returns a firmware record numbered i.
func firmwareN(i int) rollout.Firmware {
	sig := make([]byte, 64)
	for j := range sig {
		sig[j] = byte(i + j)
	}
	return rollout.Firmware{
		SHA256:    fmt.Sprintf("%064x", i+1),
		Version:   fmt.Sprintf("1.%d", i),
		Platform:  "linux/arm64",
		Size:      int64(1000 + i),
		Uploaded:  time.Unix(1700000000+int64(i), 123456789).UTC(),
		Signature: sig,
	}
}

func testFirmwareCRUD(t *testing.T, url string) {
	ctx := context.Background()
	db := open(t, url)
	list, err := db.ListFirmware(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("ListFirmware of a new database: got %v, %v; want none", list, err)
	}
	for _, i := range []int{1, 0, 2} {
		if err := db.AddFirmware(ctx, firmwareN(i)); err != nil {
			t.Fatal(err)
		}
	}
	again := firmwareN(1)
	again.Version = "other"
	if err := db.AddFirmware(ctx, again); !errors.Is(err, ErrExists) {
		t.Errorf("AddFirmware of a recorded sha: got %v, want ErrExists", err)
	}
	got, err := db.Firmware(ctx, firmwareN(1).SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, firmwareN(1)) {
		t.Errorf("Firmware: got %+v, want %+v (the first one added)", got, firmwareN(1))
	}
	if _, err := db.Firmware(ctx, firmwareN(9).SHA256); !errors.Is(err, ErrNotFound) {
		t.Errorf("Firmware of an unknown sha: got %v, want ErrNotFound", err)
	}

	list, err = db.ListFirmware(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []rollout.Firmware{firmwareN(2), firmwareN(1), firmwareN(0)} // newest first
	if !reflect.DeepEqual(list, want) {
		t.Errorf("ListFirmware:\n got %+v\nwant %+v", list, want)
	}

	if err := db.DeleteFirmware(ctx, firmwareN(1).SHA256); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteFirmware(ctx, firmwareN(1).SHA256); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteFirmware again: got %v, want ErrNotFound", err)
	}
	if _, err := db.Firmware(ctx, firmwareN(1).SHA256); !errors.Is(err, ErrNotFound) {
		t.Errorf("Firmware after delete: got %v, want ErrNotFound", err)
	}
	list, _ = db.ListFirmware(ctx)
	if len(list) != 2 {
		t.Errorf("ListFirmware after delete: got %d, want 2", len(list))
	}

	// No signature: stored as NULL, read back as nil.
	fw := firmwareN(5)
	fw.Signature = nil
	if err := db.AddFirmware(ctx, fw); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Firmware(ctx, fw.SHA256); err != nil || got.Signature != nil {
		t.Errorf("Firmware without a signature: got %v, %v; want a nil signature", got.Signature, err)
	}
}

// boardStates is the states testRollout cycles through.
var boardStates = []rollout.BoardState{
	rollout.BoardPending, rollout.BoardWaiting, rollout.BoardUpdating, rollout.BoardChecking,
	rollout.BoardUpdated, rollout.BoardFailed, rollout.BoardSkipped,
}

// testRollout returns a rollout of n boards in waves of 1, 10 % and 100 %,
// its boards in every state, its times in UTC as stored.
func testRollout(id string, n int, created time.Time) *rollout.Rollout {
	created = created.UTC()
	r := &rollout.Rollout{
		ID:       id,
		Firmware: firmwareN(0).SHA256,
		Version:  "1.0",
		Platform: "linux/arm64",
		State:    rollout.Running,
		Created:  created,
		Updated:  created.Add(time.Second),
		Spec: rollout.Spec{
			Firmware:     firmwareN(0).SHA256,
			Target:       rollout.Target{Group: "kitchen"},
			Waves:        []rollout.WaveSize{{Count: 1}, {Percent: 10}, {Percent: 100}},
			HealthWindow: 5 * time.Second,
			MaxFailures:  rollout.Limit{N: 10, Percent: true},
			Parallel:     50,
		},
		Jobs: n / 2,
	}
	sizes := []int{1, max(2, n/10), n}
	next := 0
	for w, size := range sizes {
		wave := rollout.Wave{Size: size, State: rollout.WavePending, Boards: []rollout.Board{}}
		if w == 0 {
			wave.State = rollout.WaveDone
		}
		for ; next < size && next < n; next++ {
			b := rollout.Board{ID: fmt.Sprintf("board-%04d", (next*7919)%n), State: boardStates[next%len(boardStates)]}
			switch b.State {
			case rollout.BoardPending:
			case rollout.BoardSkipped:
				b.Error = "unsupported platform"
			case rollout.BoardFailed:
				b.Error, b.Job, b.Update = "crashed", fmt.Sprintf("%s/%d", id, next), "rolled_back"
			default:
				b.Job, b.Update = fmt.Sprintf("%s/%d", id, next), "trial"
			}
			if b.State != rollout.BoardPending {
				b.Since = created.Add(time.Duration(next) * time.Millisecond)
			}
			wave.Boards = append(wave.Boards, b)
		}
		r.Waves = append(r.Waves, wave)
	}
	r.Recount()
	return r
}

// compareRollouts reports the first difference of got from want.
func compareRollouts(t *testing.T, got, want *rollout.Rollout) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	g, w := *got, *want
	g.Waves, w.Waves = nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Errorf("rollout %s:\n got %+v\nwant %+v", want.ID, g, w)
		return
	}
	if len(got.Waves) != len(want.Waves) {
		t.Errorf("rollout %s: got %d waves, want %d", want.ID, len(got.Waves), len(want.Waves))
		return
	}
	for i := range want.Waves {
		gw, ww := got.Waves[i], want.Waves[i]
		if gw.Size != ww.Size || gw.State != ww.State || len(gw.Boards) != len(ww.Boards) {
			t.Errorf("rollout %s wave %d: got size %d state %s %d boards, want %d %s %d",
				want.ID, i, gw.Size, gw.State, len(gw.Boards), ww.Size, ww.State, len(ww.Boards))
			return
		}
		for j := range ww.Boards {
			if !reflect.DeepEqual(gw.Boards[j], ww.Boards[j]) {
				t.Errorf("rollout %s wave %d board %d:\n got %+v\nwant %+v", want.ID, i, j, gw.Boards[j], ww.Boards[j])
				return
			}
		}
	}
	t.Errorf("rollout %s differs (deep-equal) but no field was found that does", want.ID)
}

func loadOne(t *testing.T, db *DB, id string) *rollout.Rollout {
	t.Helper()
	rs, err := db.Rollouts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("rollout %s not loaded (of %d)", id, len(rs))
	return nil
}

// change moves board i of r on to its next state, as a rollout does.
func change(r *rollout.Rollout, i int, now time.Time) {
	for w := range r.Waves {
		if i < len(r.Waves[w].Boards) {
			b := &r.Waves[w].Boards[i]
			b.State = boardStates[(slicesIndex(b.State)+1)%len(boardStates)]
			b.Since = now.UTC()
			b.Job = fmt.Sprintf("%s/%d", r.ID, r.Jobs+1)
			b.Update = "downloading"
			b.Error = ""
			r.Jobs++
			r.Updated = now.UTC()
			r.Recount()
			return
		}
		i -= len(r.Waves[w].Boards)
	}
	panic("no such board")
}

func slicesIndex(s rollout.BoardState) int {
	for i, x := range boardStates {
		if x == s {
			return i
		}
	}
	return -1
}

func testRolloutRoundTrip1000(t *testing.T, url string) {
	ctx := context.Background()
	db := open(t, url)
	r := testRollout("big", 1000, time.Now())
	if err := db.CreateRollout(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateRollout(ctx, testRollout("big", 3, time.Now())); !errors.Is(err, ErrExists) {
		t.Errorf("CreateRollout of an existing id: got %v, want ErrExists", err)
	}
	compareRollouts(t, loadOne(t, db, "big"), r)

	// Saves right after a create, after a load (nothing kept to compare
	// with: read from the database) and after a save.
	for round, i := range []int{0, 500, 999, 500} {
		change(r, i, time.Now())
		r.Waves[1].State = rollout.WaveRunning
		if round == 2 {
			r.State, r.Reason = rollout.Halted, "3 failures, more than max_failures 2"
		}
		if err := db.SaveRollout(ctx, r); err != nil {
			t.Fatal(err)
		}
		got := loadOne(t, db, "big")
		compareRollouts(t, got, r)
		if t.Failed() {
			t.Fatalf("after save %d (board %d)", round, i)
		}
	}

	// Another DB on the same database (a control plane taking over) saves
	// on from the rows it loaded.
	db2 := open(t, url)
	r2 := loadOne(t, db2, "big")
	change(r2, 1, time.Now())
	if err := db2.SaveRollout(ctx, r2); err != nil {
		t.Fatal(err)
	}
	compareRollouts(t, loadOne(t, db, "big"), r2)

	// A board added to a wave and another taken out of one are written
	// too, and the next save compares with what that one left.
	r2.Waves[0].Boards = append(r2.Waves[0].Boards, rollout.Board{ID: "added", State: rollout.BoardPending})
	r2.Waves[1].Boards = r2.Waves[1].Boards[1:]
	r2.Recount()
	for round := range 2 {
		if round == 1 {
			change(r2, 2, time.Now())
		}
		if err := db2.SaveRollout(ctx, r2); err != nil {
			t.Fatal(err)
		}
		compareRollouts(t, loadOne(t, open(t, url), "big"), r2)
		if t.Failed() {
			t.Fatalf("after the save with a board added and one gone, round %d", round)
		}
	}

	missing := testRollout("missing", 2, time.Now())
	if err := db.SaveRollout(ctx, missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("SaveRollout of a rollout never created: got %v, want ErrNotFound", err)
	}
}

func testRolloutsNewestFirst(t *testing.T, url string) {
	ctx := context.Background()
	db := open(t, url)
	rs, err := db.Rollouts(ctx)
	if err != nil || len(rs) != 0 {
		t.Fatalf("Rollouts of a new database: got %d, %v; want none", len(rs), err)
	}
	base := time.Unix(1700000000, 0)
	for _, c := range []struct {
		id string
		at time.Duration
	}{{"b", 2 * time.Hour}, {"a", time.Hour}, {"c", 3 * time.Hour}} {
		if err := db.CreateRollout(ctx, testRollout(c.id, 5, base.Add(c.at))); err != nil {
			t.Fatal(err)
		}
	}
	// No boards at all: skipped by every rule, done at once, still listed.
	empty := testRollout("empty", 0, base)
	empty.State = rollout.Done
	if err := db.CreateRollout(ctx, empty); err != nil {
		t.Fatal(err)
	}
	rs, err = db.Rollouts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	if got, want := strings.Join(ids, " "), "c b a empty"; got != want {
		t.Errorf("Rollouts order: got %s, want %s", got, want)
	}
	compareRollouts(t, rs[3], empty)
}

// testConcurrent uses one DB from several goroutines at once: each adds
// firmware, creates its rollout, saves it and reads everything back.
func testConcurrent(t *testing.T, url string) {
	ctx := context.Background()
	db := open(t, url)
	const workers, saves = 6, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	final := make([]*rollout.Rollout, workers)
	for w := range workers {
		wg.Add(1)
		go func() { // ends after its saves, or at its first error
			defer wg.Done()
			errs <- func() error {
				if err := db.AddFirmware(ctx, firmwareN(100+w)); err != nil {
					return err
				}
				r := testRollout(fmt.Sprintf("w%d", w), 100, time.Unix(1700000000+int64(w), 0))
				if err := db.CreateRollout(ctx, r); err != nil {
					return err
				}
				for i := range saves {
					change(r, (i*13)%100, time.Unix(1700001000+int64(i), 0))
					if err := db.SaveRollout(ctx, r); err != nil {
						return err
					}
					if _, err := db.ListFirmware(ctx); err != nil {
						return err
					}
					if i%5 == 0 {
						if _, err := db.Rollouts(ctx); err != nil {
							return err
						}
					}
				}
				final[w] = r
				return nil
			}()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		return
	}
	list, err := db.ListFirmware(ctx)
	if err != nil || len(list) != workers {
		t.Errorf("ListFirmware: got %d, %v; want %d", len(list), err, workers)
	}
	for _, r := range final {
		compareRollouts(t, loadOne(t, db, r.ID), r)
	}
}

// testConcurrentOpen opens a new database from several goroutines at once,
// as control planes sharing one start together: each migration runs once.
func testConcurrentOpen(t *testing.T, url string) {
	const n = 4
	dbs := make([]*DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { // ends when Open returns
			defer wg.Done()
			dbs[i], errs[i] = Open(context.Background(), url, Options{})
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open %d: %v", i, errs[i])
			continue
		}
		defer dbs[i].Close()
	}
	if t.Failed() {
		return
	}
	var rows int
	if err := dbs[0].db.QueryRow("SELECT COUNT(*) FROM schema_version").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != len(migrations) {
		t.Errorf("schema_version rows: got %d, want %d (each migration once)", rows, len(migrations))
	}
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url, driver, dsnPrefix, err string
	}{
		{"sqlite:/var/lib/switchyard/switchyard.db", "sqlite", "file:/var/lib/switchyard/switchyard.db?", ""},
		{"sqlite:rel/db?#%.db", "sqlite", "file:rel/db%3f%23%25.db?", ""},
		{"sqlite::memory:", "sqlite", ":memory:?", ""},
		{"sqlite:", "sqlite", ":memory:?", ""},
		{"postgres://u:p@h/db", "pgx", "postgres://u:p@h/db", ""},
		{"postgresql://u:p@h/db", "pgx", "postgresql://u:p@h/db", ""},
		{"mysql://u:p@h/db", "", "", "want sqlite:PATH or postgres://user:pass@host/db"},
		{"/var/lib/switchyard.db", "", "", "want sqlite:PATH or postgres://user:pass@host/db"},
	} {
		driver, dsn, _, err := parseURL(tc.url)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("parseURL(%q): got error %v, want %q", tc.url, err, tc.err)
			}
			continue
		}
		if err != nil || driver != tc.driver || !strings.HasPrefix(dsn, tc.dsnPrefix) {
			t.Errorf("parseURL(%q): got %s %s %v, want %s %s…", tc.url, driver, dsn, err, tc.driver, tc.dsnPrefix)
		}
		if driver == "sqlite" {
			for _, p := range []string{"busy_timeout%2810000%29", "journal_mode%28WAL%29", "synchronous%28NORMAL%29", "foreign_keys%28ON%29", "_txlock=immediate"} {
				if !strings.Contains(dsn, p) {
					t.Errorf("parseURL(%q): dsn %s lacks %s", tc.url, dsn, p)
				}
			}
		}
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"postgres://u:secret@h/db", "postgres://u:xxxxx@h/db"},
		{"postgresql://u@h/db?sslmode=disable&password=secret", "postgresql://u@h/db?password=xxxxx&sslmode=disable"},
		{"postgres://u:sec%zzret@h/db", "postgres://(invalid URL)"},
		{"sqlite:/tmp/x.db", "sqlite:/tmp/x.db"},
	} {
		if got := redact(tc.url); got != tc.want {
			t.Errorf("redact(%q): got %q, want %q", tc.url, got, tc.want)
		}
	}
	// Errors name the database without its password.
	_, err := Open(context.Background(), "postgres://u:secret@127.0.0.1:1/db?connect_timeout=1", Options{})
	if err == nil || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "u:xxxxx@127.0.0.1:1") {
		t.Errorf("Open of an unreachable postgres: got %v, want an error naming the URL without the password", err)
	}
}

func TestDialect(t *testing.T) {
	q := "UPDATE t SET a = ?, b = ? WHERE c = ?"
	if got := sqliteDialect.q(q); got != q {
		t.Errorf("sqlite q: got %s, want it unchanged", got)
	}
	if got, want := postgresDialect.q(q), "UPDATE t SET a = $1, b = $2 WHERE c = $3"; got != want {
		t.Errorf("postgres q: got %s, want %s", got, want)
	}
	step := "CREATE TABLE t (id {serial}, n {int64}, b {blob})"
	for _, tc := range []struct {
		d    dialect
		want string
	}{
		{sqliteDialect, "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, b BLOB)"},
		{postgresDialect, "CREATE TABLE t (id BIGSERIAL PRIMARY KEY, n BIGINT, b BYTEA)"},
	} {
		if got := tc.d.schema(step); got != tc.want {
			t.Errorf("%s schema: got %s, want %s", tc.d.name, got, tc.want)
		}
	}
}

func TestMemory(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{"sqlite::memory:", "sqlite:"} {
		db := open(t, u)
		// Several goroutines on the one connection see one database.
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Add(1)
			go func() { // ends after one insert
				defer wg.Done()
				if err := db.AddFirmware(ctx, firmwareN(i)); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if err := db.CreateRollout(ctx, testRollout("m", 10, time.Now())); err != nil {
			t.Fatal(err)
		}
		list, err := db.ListFirmware(ctx)
		if err != nil || len(list) != 4 {
			t.Errorf("%s: ListFirmware: got %d, %v; want 4", u, len(list), err)
		}
		if _, err := db.Rollouts(ctx); err != nil {
			t.Errorf("%s: Rollouts: %v", u, err)
		}
		db.Close()
	}
}

func TestSQLitePragmas(t *testing.T) {
	db := open(t, sqliteCase().newURL(t))
	// Every pooled connection has them: hold several at once.
	conns := make([]*sql.Conn, 3)
	for i := range conns {
		c, err := db.db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	for i, c := range conns {
		for _, p := range []struct{ pragma, want string }{
			{"journal_mode", "wal"}, {"synchronous", "1"}, {"foreign_keys", "1"}, {"busy_timeout", "10000"},
		} {
			var got string
			if err := c.QueryRowContext(context.Background(), "PRAGMA "+p.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != p.want {
				t.Errorf("connection %d: PRAGMA %s: got %s, want %s", i, p.pragma, got, p.want)
			}
		}
	}
}
