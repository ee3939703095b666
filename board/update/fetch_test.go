package update

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/devices"
	"switchyard/internal/testutil"
)

// server serves one file at /f the way the test's handler says.
type server struct {
	*httptest.Server
	body []byte

	mu       sync.Mutex
	requests []string // the Range header of every request ("" for none)
	auth     []string // the Basic credentials of every request
}

func newServer(t *testing.T, body []byte, h func(s *server, w http.ResponseWriter, r *http.Request, n int)) *server {
	t.Helper()
	s := &server{body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		n := len(s.requests)
		s.requests = append(s.requests, r.Header.Get("Range"))
		u, p, _ := r.BasicAuth()
		s.auth = append(s.auth, u+":"+p)
		s.mu.Unlock()
		h(s, w, r, n)
	}))
	t.Cleanup(s.Close)
	return s
}

func serveContent(s *server, w http.ResponseWriter, r *http.Request, _ int) {
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(s.body))
}

func (s *server) ranges() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func jobFor(url string, b []byte) devices.UpdateCommand {
	sum := sha256.Sum256(b)
	return devices.UpdateCommand{Job: "j", Version: "2", URL: url + "/f", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b))}
}

func testFetcher(t *testing.T, user, pass string) *fetcher {
	t.Helper()
	f, err := newFetcher(t.TempDir(), nil, user, pass, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	f.retryWait = 10 * time.Millisecond
	t.Cleanup(f.close)
	return f
}

// checkFile checks that the download at path holds want.
func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("downloaded %d bytes, want the %d served", len(got), len(want))
	}
}

func TestFetchResumesADroppedConnection(t *testing.T) {
	body := randomBytes(t, 300<<10)
	s := newServer(t, body, func(s *server, w http.ResponseWriter, r *http.Request, n int) {
		if n == 0 { // the first answer breaks off after 100 KiB
			w.Header().Set("Content-Length", strconv.Itoa(len(s.body)))
			_, _ = w.Write(s.body[:100<<10])
			http.NewResponseController(w).Flush()
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		serveContent(s, w, r, n)
	})
	f := testFetcher(t, "board-7", "secret")
	var progress []int
	path, n, err := f.get(context.Background(), jobFor(s.URL, body), func(p int) { progress = append(progress, p) })
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	checkFile(t, path, body)
	if n != int64(len(body)) {
		t.Errorf("size: got %d, want %d", n, len(body))
	}
	if got := s.ranges(); len(got) != 2 || got[0] != "" || got[1] != "bytes="+strconv.Itoa(100<<10)+"-" {
		t.Errorf("Range headers: got %q, want none, then bytes=%d-", got, 100<<10)
	}
	if got := s.auth[0]; got != "board-7:secret" {
		t.Errorf("credentials: got %q, want board-7:secret", got)
	}
	for i := 1; i < len(progress); i++ {
		if progress[i] <= progress[i-1] {
			t.Errorf("progress not rising: %v", progress)
		}
	}
	if len(progress) == 0 || progress[0] != 0 {
		t.Errorf("progress: got %v, want 0 first", progress)
	}
}

func TestFetchResumesAPartLeftBehind(t *testing.T) {
	body := randomBytes(t, 64<<10)
	s := newServer(t, body, serveContent)
	f := testFetcher(t, "", "")
	job := jobFor(s.URL, body)
	if err := os.WriteFile(filepath.Join(f.dir, job.SHA256+".part"), body[:1000], 0o600); err != nil {
		t.Fatal(err)
	}
	path, _, err := f.get(context.Background(), job, func(int) {})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	checkFile(t, path, body)
	if got := s.ranges(); len(got) != 1 || got[0] != "bytes=1000-" {
		t.Errorf("Range headers: got %q, want bytes=1000-", got)
	}
	if s.auth[0] != ":" {
		t.Errorf("credentials sent without any: %q", s.auth[0])
	}

	// A .part that is not a prefix of the file (torn by a power cut) makes
	// the checksum fail once: the download starts again from scratch.
	body2 := randomBytes(t, 64<<10)
	s2 := newServer(t, body2, serveContent)
	job2 := jobFor(s2.URL, body2)
	if err := os.WriteFile(filepath.Join(f.dir, job2.SHA256+".part"), make([]byte, 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	path, _, err = f.get(context.Background(), job2, func(int) {})
	if err != nil {
		t.Fatalf("get after a torn part: %v", err)
	}
	checkFile(t, path, body2)
	if got := s2.ranges(); len(got) != 2 || got[0] != "bytes=1000-" || got[1] != "" {
		t.Errorf("Range headers after a torn part: got %q, want bytes=1000-, then none", got)
	}
}

func TestFetchShared(t *testing.T) {
	body := randomBytes(t, 64<<10)
	release := make(chan struct{})
	s := newServer(t, body, func(s *server, w http.ResponseWriter, r *http.Request, n int) {
		<-release
		serveContent(s, w, r, n)
	})
	f := testFetcher(t, "", "")
	job := jobFor(s.URL, body)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	started := make(chan struct{}, n)
	for range n {
		wg.Go(func() { // ends when get returns
			_, _, err := f.get(context.Background(), job, func(p int) {
				if p == 0 {
					started <- struct{}{}
				}
			})
			errs <- err
		})
	}
	for range n { // every waiter has joined before the bytes come
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("not every waiter started")
		}
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("get: %v", err)
		}
	}
	if got := s.ranges(); len(got) != 1 {
		t.Errorf("requests: got %d, want 1 shared by %d waiters", len(got), n)
	}
	// Complete: another job with the same bytes needs no request.
	if _, _, err := f.get(context.Background(), job, func(int) {}); err != nil || len(s.ranges()) != 1 {
		t.Errorf("get again: %v after %d requests, want the complete download", err, len(s.ranges()))
	}
	// A job with another size for the same bytes is refused.
	wrong := job
	wrong.Size++
	if _, _, err := f.get(context.Background(), wrong, func(int) {}); err == nil || !devices.UpdateErrorIs(err.Error(), devices.UpdateErrSize) {
		t.Errorf("wrong size: got %v, want a size error", err)
	}
}

func TestFetchFails(t *testing.T) {
	body := randomBytes(t, 10<<10)
	tests := []struct {
		name     string
		handler  func(s *server, w http.ResponseWriter, r *http.Request, n int)
		job      func(devices.UpdateCommand) devices.UpdateCommand
		word     string
		requests int
	}{
		{"not found", func(s *server, w http.ResponseWriter, r *http.Request, _ int) { http.NotFound(w, r) },
			nil, devices.UpdateErrDownload, 1},
		{"server errors", func(s *server, w http.ResponseWriter, r *http.Request, _ int) {
			http.Error(w, "down", http.StatusServiceUnavailable)
		},
			nil, devices.UpdateErrDownload, downloadAttempts},
		{"other size", serveContent, func(j devices.UpdateCommand) devices.UpdateCommand { j.Size--; return j },
			devices.UpdateErrSize, 1},
		{"longer than its size, chunked", func(s *server, w http.ResponseWriter, r *http.Request, _ int) {
			_, _ = w.Write(s.body) // no Content-Length: the client counts
			_, _ = w.Write([]byte("more"))
		}, nil, devices.UpdateErrSize, 1},
		{"other bytes", serveContent, func(j devices.UpdateCommand) devices.UpdateCommand {
			j.SHA256 = strings.Repeat("0", 64)
			return j
		}, devices.UpdateErrChecksum, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, body, tt.handler)
			f := testFetcher(t, "", "")
			job := jobFor(s.URL, body)
			if tt.job != nil {
				job = tt.job(job)
			}
			_, _, err := f.get(context.Background(), job, func(int) {})
			if err == nil || !devices.UpdateErrorIs(err.Error(), tt.word) {
				t.Fatalf("got %v, want an error %q", err, tt.word)
			}
			if got := len(s.ranges()); got != tt.requests {
				t.Errorf("requests: got %d, want %d", got, tt.requests)
			}
			if tt.word != devices.UpdateErrDownload {
				if _, err := os.Stat(filepath.Join(f.dir, job.SHA256+".part")); !os.IsNotExist(err) {
					t.Errorf("the .part of refused bytes is still there (%v)", err)
				}
			}
		})
	}
}

func TestFetchLeavesWhenTheLastWaiterDoes(t *testing.T) {
	body := randomBytes(t, 10<<10)
	gone := make(chan struct{})
	s := newServer(t, body, func(s *server, w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Content-Length", strconv.Itoa(len(s.body)))
		_, _ = w.Write(s.body[:100])
		http.NewResponseController(w).Flush()
		<-r.Context().Done() // until the client gives up
		close(gone)
	})
	f := testFetcher(t, "", "")
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { // ends when get returns, once ctx is cancelled
		_, _, err := f.get(ctx, jobFor(s.URL, body), func(p int) {})
		got <- err
	}()
	// Wait for the first bytes on disk, then leave: the download stops.
	testutil.WaitFor(t, 10*time.Second, testutil.Until("the first bytes on disk", func() bool { // no event tells when the file grows
		fi, err := os.Stat(filepath.Join(f.dir, jobFor(s.URL, body).SHA256+".part"))
		return err == nil && fi.Size() == 100
	}))
	cancel()
	select {
	case err := <-got:
		if err != context.Canceled {
			t.Errorf("get: got %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("get did not return")
	}
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the download goes on with no one waiting")
	}
}

func TestContentRange(t *testing.T) {
	for _, tt := range []struct {
		in           string
		start, total int64
		ok           bool
	}{
		{"bytes 100-199/200", 100, 200, true},
		{"bytes 0-9/*", 0, -1, true},
		{"bytes */200", 0, 0, false},
		{"items 1-2/3", 0, 0, false},
		{"", 0, 0, false},
	} {
		start, total, ok := contentRange(tt.in)
		if start != tt.start || total != tt.total || ok != tt.ok {
			t.Errorf("contentRange(%q): got %d, %d, %t; want %d, %d, %t", tt.in, start, total, ok, tt.start, tt.total, tt.ok)
		}
	}
}

func TestProgressDue(t *testing.T) {
	for _, c := range []struct {
		pct, last int
		since     time.Duration
		want      bool
	}{
		{0, -1, 0, false},                 // not past the gap yet
		{0, -1, time.Hour, true},          // the first report
		{5, 0, progressGap, true},         // a step, past the gap
		{5, 0, progressGap - 1, false},    // a step, too soon
		{60, 0, progressGap - 1, false},   // a fast download says little
		{4, 0, progressGap, false},        // less than a step
		{4, 0, progressEvery, true},       // a slow download, every second
		{4, 4, progressEvery * 10, false}, // nothing moved
		{3, 4, progressEvery, false},      // never backwards
	} {
		if got := progressDue(c.pct, c.last, c.since); got != c.want {
			t.Errorf("progressDue(%d, %d, %v): got %v, want %v", c.pct, c.last, c.since, got, c.want)
		}
	}
}
