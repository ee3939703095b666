package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newFiles(t *testing.T) (*Files, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "firmware")
	f, err := NewFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	return f, dir
}

func shaOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// names lists dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n []string
	for _, e := range es {
		n = append(n, e.Name())
	}
	return n
}

func TestFilesPutOpenRemove(t *testing.T) {
	f, dir := newFiles(t)
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("NewFiles: dir %v, %v; want it created 0700", info, err)
	}
	data := bytes.Repeat([]byte("firmware "), 100000) // 900 kB
	sha, size, err := f.Put(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if sha != shaOf(data) || size != int64(len(data)) {
		t.Errorf("Put: got %s %d, want %s %d", sha, size, shaOf(data), len(data))
	}
	if got := strings.Join(names(t, dir), " "); got != sha {
		t.Errorf("dir after Put: got %q, want only %s", got, sha)
	}
	if f.Path(sha) != filepath.Join(dir, sha) {
		t.Errorf("Path: got %s", f.Path(sha))
	}
	file, err := f.Open(sha)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(file)
	file.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("Open: read %d bytes, %v; want the %d put", len(got), err, len(data))
	}

	// The same bytes again: 409's case, the file untouched, no temp left.
	sha2, size2, err := f.Put(bytes.NewReader(data), int64(len(data)))
	if !errors.Is(err, ErrExists) || sha2 != sha || size2 != size {
		t.Errorf("Put again: got %s %d %v, want %s %d ErrExists", sha2, size2, err, sha, size)
	}
	if got := strings.Join(names(t, dir), " "); got != sha {
		t.Errorf("dir after the second Put: got %q, want only %s", got, sha)
	}

	if err := f.Remove(sha); err != nil {
		t.Fatal(err)
	}
	if err := f.Remove(sha); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove again: got %v, want ErrNotFound", err)
	}
	if _, err := f.Open(sha); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open after Remove: got %v, want ErrNotFound", err)
	}
	if n := names(t, dir); len(n) != 0 {
		t.Errorf("dir after Remove: got %v, want empty", n)
	}
}

func TestFilesTooLarge(t *testing.T) {
	f, dir := newFiles(t)
	for _, n := range []int{10, 11} {
		data := bytes.Repeat([]byte{'x'}, n)
		sha, size, err := f.Put(bytes.NewReader(data), 10)
		if n == 10 {
			if err != nil || size != 10 || sha != shaOf(data) {
				t.Errorf("Put of exactly max: got %s %d %v, want it stored", sha, size, err)
			}
			continue
		}
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("Put of max+1: got %v, want ErrTooLarge", err)
		}
	}
	if got := names(t, dir); len(got) != 1 {
		t.Errorf("dir: got %v, want only the file of 10 bytes (no temp left)", got)
	}

	// Put stops reading past max: an endless reader ends.
	if _, _, err := f.Put(endless{}, 1<<20); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Put of an endless reader: got %v, want ErrTooLarge", err)
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }

// failing is a reader that fails after some bytes.
type failing struct{ n int }

func (r *failing) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("connection reset")
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func TestFilesReadError(t *testing.T) {
	f, dir := newFiles(t)
	if _, _, err := f.Put(&failing{n: 5000}, 1<<20); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("Put from a failing reader: got %v, want its error", err)
	}
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("dir: got %v, want empty (the temp removed)", got)
	}
}

func TestFilesBadSHA(t *testing.T) {
	f, dir := newFiles(t)
	// A file outside the directory that a path trick would reach.
	secret := filepath.Join(filepath.Dir(dir), "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := shaOf([]byte("x"))
	for _, sha := range []string{
		"", "../secret", "..", "/etc/passwd", strings.ToUpper(good), good[:63], good + "0",
		good[:62] + "/.", "../" + good[3:], good[:63] + "g",
	} {
		if p := f.Path(sha); p != "" {
			t.Errorf("Path(%q): got %s, want empty", sha, p)
		}
		if file, err := f.Open(sha); !errors.Is(err, ErrNotFound) {
			if file != nil {
				file.Close()
			}
			t.Errorf("Open(%q): got %v, want ErrNotFound", sha, err)
		}
		if err := f.Remove(sha); !errors.Is(err, ErrNotFound) {
			t.Errorf("Remove(%q): got %v, want ErrNotFound", sha, err)
		}
	}
	if _, err := os.Stat(secret); err != nil {
		t.Errorf("the file outside: %v", err)
	}
}

func TestNewFilesRemovesStaleTemps(t *testing.T) {
	_, dir := newFiles(t)
	stale := filepath.Join(dir, tmpPrefix+"stale")
	fresh := filepath.Join(dir, tmpPrefix+"fresh")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTmp)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := NewFiles(dir); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(t, dir), " "); got != tmpPrefix+"fresh" {
		t.Errorf("dir: got %q, want only the fresh temp (an upload maybe still running)", got)
	}
}
