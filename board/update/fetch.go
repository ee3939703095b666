package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"switchyard/devices"
)

// Download defaults.
const (
	downloadAttempts = 5                      // tries of one download, resuming with Range after the first
	firstRetryWait   = 500 * time.Millisecond // doubles after every failed try
	idleTimeout      = 60 * time.Second       // no byte for this long: the try has failed
	progressStep     = 5                      // report progress every 5 %…
	progressGap      = 250 * time.Millisecond // …but not more often than this…
	progressEvery    = time.Second            // …and every second it moved
)

// progressDue reports whether a download at pct percent, since last
// reported at last percent a while ago, reports again: every progressStep
// percent but at most every progressGap, and every progressEvery when it
// moved at all. A fast download (a board on a wire, a thousand simulated
// ones on loopback) then says 0 and little more instead of twenty retained
// messages each, which every browser and the history would get.
func progressDue(pct, last int, since time.Duration) bool {
	if pct <= last {
		return false
	}
	return since >= progressEvery || (pct >= last+progressStep && since >= progressGap)
}

// fetcher downloads builds into dir, streaming each to <sha>.part while
// hashing it, and renaming it to <sha> once its size and SHA-256 are
// right. Every job that wants the same SHA-256 shares one download (a
// thousand simulated boards fetch a build once). A .part left by a failed
// try or a killed process is resumed with Range.
type fetcher struct {
	dir        string
	client     *http.Client
	user, pass string
	log        *slog.Logger
	retryWait  time.Duration // first wait before a retry

	ctx    context.Context // cancelled by close: every download stops
	cancel context.CancelFunc
	wg     sync.WaitGroup // the download goroutines

	mu       sync.Mutex           // guards inflight and complete
	inflight map[string]*download // by SHA-256
	complete map[string]int64     // SHA-256 → size of <dir>/<sha>, checked
}

// download is one download in flight, shared by its waiters.
type download struct {
	sha, url string
	size     int64
	cancel   context.CancelFunc
	waiters  int           // guarded by fetcher.mu; the download stops when the last leaves
	done     chan struct{} // closed when the download has ended; err is set before
	err      error

	got atomic.Int64 // bytes in the .part so far

	pmu     sync.Mutex    // guards changed and pct
	changed chan struct{} // closed (and replaced) when pct changes
	pct     int
}

func newFetcher(dir string, client *http.Client, user, pass string, log *slog.Logger) (*fetcher, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("downloads directory: %w", err)
	}
	if client == nil {
		client = defaultHTTPClient()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &fetcher{
		dir: dir, client: client, user: user, pass: pass, log: log, retryWait: firstRetryWait,
		ctx: ctx, cancel: cancel,
		inflight: map[string]*download{}, complete: map[string]int64{},
	}, nil
}

// close stops every download and waits for them; the .part files stay.
func (f *fetcher) close() {
	f.cancel()
	f.wg.Wait()
	f.client.CloseIdleConnections()
}

// path returns where the complete download of sha is.
func (f *fetcher) path(sha string) string { return filepath.Join(f.dir, sha) }

// forget drops sha's complete download (it was moved or removed).
func (f *fetcher) forget(sha string) {
	f.mu.Lock()
	delete(f.complete, sha)
	f.mu.Unlock()
}

// get returns the path and size of the bytes of job, downloading them
// unless a download of the same SHA-256 is complete or in flight. Their
// SHA-256 is the job's (a mismatch is a "checksum" error, and so is a
// wrong size a "size" one); signature and platform are the caller's to
// check. progress gets the percentage downloaded, 0 first, then at most
// every 5 % or every second (100 at once when the bytes are there). If
// ctx ends, get returns at once; the download goes on while another job
// waits for it.
func (f *fetcher) get(ctx context.Context, job devices.UpdateCommand, progress func(int)) (string, int64, error) {
	f.mu.Lock()
	if n, ok := f.complete[job.SHA256]; ok {
		f.mu.Unlock()
		progress(100)
		return f.checkSize(job, n)
	}
	d := f.inflight[job.SHA256]
	if d == nil {
		dctx, cancel := context.WithCancel(f.ctx)
		d = &download{sha: job.SHA256, url: job.URL, size: job.Size, cancel: cancel,
			done: make(chan struct{}), changed: make(chan struct{})}
		f.inflight[job.SHA256] = d
		f.wg.Add(1)
		go func() { // ends when the download has, or when dctx is cancelled (close, or no waiter left)
			defer f.wg.Done()
			n, err := f.run(dctx, d)
			f.mu.Lock()
			delete(f.inflight, d.sha)
			if err == nil {
				f.complete[d.sha] = n
			}
			d.err = err
			f.mu.Unlock()
			close(d.done)
		}()
	}
	d.waiters++
	f.mu.Unlock()

	// 0 first, whatever the download (which may have started before this
	// waiter, or be quick) has done by now.
	progress(0)
	last, lastAt := 0, time.Now()
	for {
		d.pmu.Lock()
		pct, changed := d.pct, d.changed
		d.pmu.Unlock()
		var again <-chan time.Time // a change held back by progressGap is told once it passed
		if progressDue(pct, last, time.Since(lastAt)) {
			progress(pct)
			last, lastAt = pct, time.Now()
		} else if pct > last {
			again = time.After(progressGap - time.Since(lastAt))
		}
		select {
		case <-again:
		case <-d.done:
			if d.err != nil {
				return "", 0, d.err
			}
			return f.checkSize(job, d.got.Load())
		case <-changed:
		case <-ctx.Done():
			f.mu.Lock()
			d.waiters--
			if d.waiters == 0 {
				d.cancel()
			}
			f.mu.Unlock()
			return "", 0, ctx.Err()
		}
	}
}

// checkSize returns the complete download of job if it has the job's size.
func (f *fetcher) checkSize(job devices.UpdateCommand, n int64) (string, int64, error) {
	if n != job.Size {
		return "", 0, failure(devices.UpdateErrSize, "job says %d bytes, the file has %d", job.Size, n)
	}
	return f.path(job.SHA256), n, nil
}

// setGot records the bytes downloaded and wakes the waiters when the
// percentage changes.
func (d *download) setGot(n int64) {
	d.got.Store(n)
	pct := int(n * 100 / d.size)
	d.pmu.Lock()
	defer d.pmu.Unlock()
	if pct != d.pct {
		d.pct = pct
		close(d.changed)
		d.changed = make(chan struct{})
	}
}

// permanentError is a download error that a retry will not mend.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// run downloads d into <sha>.part, resuming what is there, and renames it
// to <sha> once size and SHA-256 are right. It returns the size.
func (f *fetcher) run(ctx context.Context, d *download) (int64, error) {
	part := filepath.Join(f.dir, d.sha+".part")
	file, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return 0, failure(devices.UpdateErrDownload, "%v", err)
	}
	defer file.Close()
	h := sha256.New()
	off, err := io.Copy(h, file) // what an earlier try left, to resume
	if err != nil {
		return 0, failure(devices.UpdateErrDownload, "read %s: %v", part, err)
	}
	if off > d.size {
		off, err = restart(file, h)
		if err != nil {
			return 0, err
		}
	}
	resumed := off > 0
	if resumed {
		f.log.Info("resuming download", "sha256", d.sha, "have", off, "of", d.size)
	}
	d.setGot(off)
	wait := f.retryWait
	for attempt := 1; ; attempt++ {
		off, err = f.try(ctx, d, file, h, off)
		if err == nil && hex.EncodeToString(h.Sum(nil)) != d.sha {
			if resumed { // a torn or stale .part: once more from the start
				f.log.Warn("resumed download has the wrong checksum, starting again", "sha256", d.sha)
				resumed = false
				if off, err = restart(file, h); err != nil {
					return 0, err
				}
				d.setGot(0)
				attempt = 0
				continue
			}
			_ = os.Remove(part)
			return 0, failure(devices.UpdateErrChecksum, "the bytes' SHA-256 is %x", h.Sum(nil))
		}
		if err == nil {
			break
		}
		var perm permanentError
		if errors.As(err, &perm) || ctx.Err() != nil || attempt == downloadAttempts {
			var je *jobError
			if errors.As(err, &je) && je.word == devices.UpdateErrSize {
				_ = os.Remove(part) // not the bytes of this job: nothing to resume
			}
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, err
		}
		f.log.Warn("download failed, retrying", "sha256", d.sha, "have", off, "of", d.size, "err", err, "in", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		wait *= 2
	}
	if err := file.Sync(); err != nil {
		return 0, failure(devices.UpdateErrDownload, "sync %s: %v", part, err)
	}
	if err := os.Rename(part, f.path(d.sha)); err != nil {
		return 0, failure(devices.UpdateErrDownload, "%v", err)
	}
	return off, syncDir(f.dir)
}

// restart empties the .part for a download from the start.
func restart(file *os.File, h hash.Hash) (int64, error) {
	h.Reset()
	if err := file.Truncate(0); err != nil {
		return 0, failure(devices.UpdateErrDownload, "%v", err)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return 0, failure(devices.UpdateErrDownload, "%v", err)
	}
	return 0, nil
}

// try makes one request for d, from off on, into its .part file and h.
func (f *fetcher) try(ctx context.Context, d *download, file *os.File, h hash.Hash, off int64) (int64, error) {
	return fetchRange(ctx, f.client, f.user, f.pass, d.url, d.size, sink{file: file, h: h, got: d.setGot}, off)
}

// sink is where a download's bytes go: a .part file and its hash, or, for
// a simulated board, the hash alone.
type sink struct {
	file *os.File // nil: hashed and dropped
	h    hash.Hash
	got  func(int64) // told the bytes there so far
}

func (s sink) write(p []byte) error {
	if s.file != nil {
		if _, err := s.file.Write(p); err != nil {
			return err
		}
	}
	s.h.Write(p)
	return nil
}

// restart empties the sink for a download from the start.
func (s sink) restart() (int64, error) {
	s.got(0)
	if s.file == nil {
		s.h.Reset()
		return 0, nil
	}
	return restart(s.file, s.h)
}

// fetchRange makes one request for the size bytes at url, from off on
// (Range), with HTTP Basic user and pass when set, and appends what comes
// to s. It returns the new offset; nil once all size bytes are there. An
// error a retry cannot mend is a permanentError.
func fetchRange(ctx context.Context, client *http.Client, user, pass, url string, size int64, s sink, off int64) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return off, permanentError{failure(devices.UpdateErrDownload, "%v", err)}
	}
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	if off > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-")
	}
	resp, err := client.Do(req)
	if err != nil {
		return off, failure(devices.UpdateErrDownload, "%v", err)
	}
	defer resp.Body.Close()
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		if off > 0 { // the server ignored Range: take it all again
			if off, err = s.restart(); err != nil {
				return off, err
			}
		}
		if resp.ContentLength >= 0 && resp.ContentLength != size {
			return off, permanentError{failure(devices.UpdateErrSize, "job says %d bytes, the server sends %d", size, resp.ContentLength)}
		}
	case code == http.StatusPartialContent:
		start, total, ok := contentRange(resp.Header.Get("Content-Range"))
		switch {
		case ok && total >= 0 && total != size:
			return off, permanentError{failure(devices.UpdateErrSize, "job says %d bytes, the server has %d", size, total)}
		case !ok || start != off:
			_, err := s.restart() // an answer for another range: start again
			if err != nil {
				return 0, err
			}
			return 0, failure(devices.UpdateErrDownload, "unexpected Content-Range %q", resp.Header.Get("Content-Range"))
		}
	case code == http.StatusRequestedRangeNotSatisfiable:
		off, err = s.restart() // what we have is no prefix of this file
		if err != nil {
			return off, err
		}
		return off, failure(devices.UpdateErrDownload, "%s", resp.Status)
	case code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout:
		return off, failure(devices.UpdateErrDownload, "%s", resp.Status)
	default:
		return off, permanentError{failure(devices.UpdateErrDownload, "%s", resp.Status)}
	}

	idle := time.AfterFunc(idleTimeout, cancel)
	defer idle.Stop()
	buf := make([]byte, 64<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			idle.Reset(idleTimeout)
			if off+int64(n) > size {
				return off, permanentError{failure(devices.UpdateErrSize, "the server sends more than the job's %d bytes", size)}
			}
			if err := s.write(buf[:n]); err != nil {
				return off, permanentError{failure(devices.UpdateErrDownload, "write: %v", err)}
			}
			off += int64(n)
			s.got(off)
		}
		if rerr == io.EOF {
			if off < size {
				return off, failure(devices.UpdateErrDownload, "the connection ended at %d of %d bytes", off, size)
			}
			return off, nil
		}
		if rerr != nil {
			if ctx.Err() != nil && !idle.Stop() {
				return off, failure(devices.UpdateErrDownload, "no data for %s", idleTimeout)
			}
			return off, failure(devices.UpdateErrDownload, "%v", rerr)
		}
	}
}

// contentRange parses "bytes START-END/TOTAL" (TOTAL may be *: -1).
func contentRange(v string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	first, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, total, true
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
