package loadgen_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"switchyard/loadgen"
)

// TestRunFetch runs the fetch control against its own server: every
// download is counted and verified, and a wrong SHA-256 fails them all.
func TestRunFetch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := loadgen.FetchConfig{Size: 256 << 10, Waves: []int{1, 4}, Starts: []time.Duration{0, 10 * time.Millisecond}, Rate: 1000, Burst: 2}
	res, err := loadgen.RunFetch(ctx, cfg)
	if err != nil {
		t.Fatalf("RunFetch: %v", err)
	}
	if got, want := res.Downloads, 5; got != want || res.Failed != 0 {
		t.Errorf("downloads %d (failed %d), want %d (0)", got, res.Failed, want)
	}
	if got, want := res.Bytes, int64(5*256<<10); got != want {
		t.Errorf("bytes %d, want %d", got, want)
	}

	cfg.SHA256 = strings.Repeat("0", 64)
	res, err = loadgen.RunFetch(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "5 of 5 downloads failed") {
		t.Errorf("RunFetch with a wrong sha256: err %v, want 5 of 5 downloads failed", err)
	}
	if res == nil || res.Downloads != 0 {
		t.Errorf("with a wrong sha256: %+v, want no download verified", res)
	}
}
