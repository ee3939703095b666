package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"switchyard/devices"
)

// streamSim downloads job's bytes for one simulated board, as a real board
// would (its own HTTP request, Range to resume after a dropped connection,
// progress), hashing them as they come: a simulated board keeps nothing on
// disk or in memory. It checks size and SHA-256 with the contract's words.
func streamSim(ctx context.Context, client *http.Client, user, pass string, job devices.UpdateCommand, progress func(int)) error {
	last, lastAt := -1, time.Time{}
	s := sink{h: sha256.New(), got: func(n int64) {
		pct := int(n * 100 / job.Size)
		if progressDue(pct, last, time.Since(lastAt)) {
			progress(pct)
			last, lastAt = pct, time.Now()
		}
	}}
	s.got(0)
	var off int64
	var err error
	wait := firstRetryWait
	for attempt := 1; ; attempt++ {
		off, err = fetchRange(ctx, client, user, pass, job.URL, job.Size, s, off)
		var perm permanentError
		if err == nil || errors.As(err, &perm) || ctx.Err() != nil || attempt == downloadAttempts {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait *= 2
	}
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(s.h.Sum(nil)); got != job.SHA256 {
		return failure(devices.UpdateErrChecksum, "want %s, got %s", job.SHA256, got)
	}
	return nil
}
