package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"switchyard/devices"
)

// Files keeps firmware bytes as files named by their SHA-256 in one
// directory, so a build is written once, never changed, and found by the
// digest boards ask for. The bytes only ever stream through: Put copies
// from its reader to disk while hashing, and Open hands back the file.
//
// A file appears under its name only complete and synced (written to a
// temporary file in the same directory, synced, renamed, the directory
// synced), so a crash leaves either the whole file or none of it, plus at
// most a temporary file that NewFiles removes later.
type Files struct {
	dir string
}

// tmpPrefix starts the names of files Put is still writing.
const tmpPrefix = ".upload-"

// staleTmp is the age after which NewFiles removes a temporary file: one
// left by a crash. It is long enough that an upload another process sharing
// the directory is still writing is not one.
const staleTmp = time.Hour

// NewFiles returns the files in dir, creating it (0700) when missing, and
// removes temporary files older than an hour that a crash left.
func NewFiles(dir string) (*Files, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("firmware files %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("firmware files %s: %w", dir, err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleTmp {
			_ = os.Remove(filepath.Join(dir, e.Name())) // best effort: the next start tries again
		}
	}
	return &Files{dir: dir}, nil
}

// Put stores what r gives, up to maxSize bytes, and returns its SHA-256 (the
// file's name) and size. More than maxSize bytes: nothing is stored and the
// error wraps ErrTooLarge (Put stops reading at maxSize+1). The same bytes
// stored already: the sha and size are returned with an error wrapping
// ErrExists, and the file is left as it was.
func (f *Files) Put(r io.Reader, maxSize int64) (sha string, size int64, err error) {
	tmp, err := os.CreateTemp(f.dir, tmpPrefix+"*")
	if err != nil {
		return "", 0, fmt.Errorf("store firmware: %w", err)
	}
	defer func() {
		if tmp != nil { // not renamed: remove it
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, maxSize+1))
	if err != nil {
		return "", 0, fmt.Errorf("store firmware: %w", err)
	}
	if n > maxSize {
		return "", 0, fmt.Errorf("store firmware: more than %d bytes: %w", maxSize, ErrTooLarge)
	}
	sha = hex.EncodeToString(h.Sum(nil))
	if err := tmp.Sync(); err != nil {
		return "", 0, fmt.Errorf("store firmware %s: %w", sha, err)
	}
	if err := tmp.Close(); err != nil {
		return "", 0, fmt.Errorf("store firmware %s: %w", sha, err)
	}
	dst := filepath.Join(f.dir, sha)
	if _, err := os.Lstat(dst); err == nil {
		return sha, n, fmt.Errorf("store firmware %s: %w", sha, ErrExists)
	}
	// Two Puts of the same bytes at once may both get here: the second
	// rename replaces a file with the same bytes, which no reader notices.
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", 0, fmt.Errorf("store firmware %s: %w", sha, err)
	}
	tmp = nil
	if err := syncDir(f.dir); err != nil {
		return "", 0, fmt.Errorf("store firmware %s: %w", sha, err)
	}
	return sha, n, nil
}

// Open opens the file of the build with that SHA-256 for reading; the
// error wraps ErrNotFound when there is none (or sha is not a SHA-256).
func (f *Files) Open(sha string) (*os.File, error) {
	p := f.Path(sha)
	if p == "" {
		return nil, fmt.Errorf("open firmware %q: not a SHA-256: %w", sha, ErrNotFound)
	}
	file, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open firmware %s: %w", sha, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open firmware %s: %w", sha, err)
	}
	return file, nil
}

// Remove removes the file of the build with that SHA-256; the error wraps
// ErrNotFound when there is none (or sha is not a SHA-256). A reader that
// has it open reads on to the end.
func (f *Files) Remove(sha string) error {
	p := f.Path(sha)
	if p == "" {
		return fmt.Errorf("remove firmware %q: not a SHA-256: %w", sha, ErrNotFound)
	}
	err := os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove firmware %s: %w", sha, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("remove firmware %s: %w", sha, err)
	}
	if err := syncDir(f.dir); err != nil {
		return fmt.Errorf("remove firmware %s: %w", sha, err)
	}
	return nil
}

// Path is the file name of the build with that SHA-256, or "" when sha is
// not a SHA-256 in lowercase hex (so no name can leave the directory).
func (f *Files) Path(sha string) string {
	if !devices.ValidSHA256(sha) {
		return ""
	}
	return filepath.Join(f.dir, sha)
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
