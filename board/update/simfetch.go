package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"switchyard/devices"
)

// simBufs are the read buffers of simulated boards' downloads: a thousand
// boards downloading at once share what is free, not a buffer each.
var simBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// streamSim downloads job's bytes for one simulated board, as a real board
// would (its own HTTP request, Range to resume after a dropped connection,
// progress), hashing them as they come: a simulated board keeps nothing on
// disk or in memory. It checks size and SHA-256 with the contract's words.
func streamSim(ctx context.Context, client *http.Client, user, pass string, job devices.UpdateCommand, progress func(int)) error {
	h := sha256.New()
	var off int64
	last, lastAt := -1, time.Time{}
	report := func() {
		pct := int(off * 100 / job.Size)
		if pct > last && (pct >= last+progressStep || time.Since(lastAt) >= progressEvery || pct == 100) {
			progress(pct)
			last, lastAt = pct, time.Now()
		}
	}
	report()
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(time.Duration(attempt) * 500 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		var permanent bool
		off, permanent, err = streamOnce(ctx, client, user, pass, job, h, off, report)
		if err == nil || permanent || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != job.SHA256 {
		return failure(devices.UpdateErrChecksum, "want %s, got %s", job.SHA256, got)
	}
	return nil
}

// streamOnce is one request of streamSim from offset off; it returns the
// new offset and whether a retry cannot help.
func streamOnce(ctx context.Context, client *http.Client, user, pass string, job devices.UpdateCommand, h io.Writer, off int64, report func()) (int64, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, job.URL, nil)
	if err != nil {
		return off, true, failure(devices.UpdateErrDownload, "%v", err)
	}
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	if off > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-")
	}
	resp, err := client.Do(req)
	if err != nil {
		return off, false, failure(devices.UpdateErrDownload, "%v", err)
	}
	defer resp.Body.Close()
	switch code := resp.StatusCode; {
	case code == http.StatusOK && off == 0, code == http.StatusPartialContent && off > 0:
	case code >= 500 || code == http.StatusTooManyRequests:
		return off, false, failure(devices.UpdateErrDownload, "%s", resp.Status)
	default:
		return off, true, failure(devices.UpdateErrDownload, "%s", resp.Status)
	}
	bp := simBufs.Get().(*[]byte)
	defer simBufs.Put(bp)
	for {
		n, rerr := resp.Body.Read(*bp)
		if n > 0 {
			if off+int64(n) > job.Size {
				return off, true, failure(devices.UpdateErrSize, "the server sends more than the job's %d bytes", job.Size)
			}
			h.Write((*bp)[:n])
			off += int64(n)
			report()
		}
		switch {
		case rerr == io.EOF && off < job.Size:
			return off, false, failure(devices.UpdateErrDownload, "the connection ended at %d of %d bytes", off, job.Size)
		case rerr == io.EOF:
			return off, false, nil
		case rerr != nil:
			return off, false, failure(devices.UpdateErrDownload, "%v", rerr)
		}
	}
}
