package loadgen

// The fetch control: a simulated fleet's firmware downloads (each its own
// request, hashed with SHA-256 as the bytes come, nothing kept) on the
// timeline of a 1,000-board rollout, with no rollout behind them. Beside
// the live path's load it splits the live path's shift during a rollout
// into the part the downloads' CPU and memory traffic cause on a shared
// machine and the part the control plane's rollout adds.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// FetchConfig describes one fetch control run.
type FetchConfig struct {
	// URL of the build (GET, Bearer Token), e.g. the control plane's
	// /firmware/<sha256>. Empty: this process serves Size random bytes from
	// a file on 127.0.0.1:0 itself (net/http, sendfile), so no other
	// process takes part.
	URL    string
	Token  string
	SHA256 string // what the body must hash to (empty: the served file's, or with URL the first download's)
	Size   int64  // with URL empty (default 5 MiB)
	// Waves are the downloads per wave and Starts when each wave begins,
	// from the run's start (default 1, 100, 899 at 0, 10.5 s, 21.4 s: the
	// wave ends of a 1,000-board rollout with health_window 5 s in
	// bench/results/issue12/2026-12-05b/main-1.txt).
	Waves  []int
	Starts []time.Duration
	// Rate downloads start per second, in bursts of Burst (default 100 and
	// 20: the control plane's job rate).
	Rate  float64
	Burst int
	Log   func(format string, args ...any) // progress, may be nil
}

// FetchResult is what one fetch run measured.
type FetchResult struct {
	Downloads  int           // completed and verified
	Failed     int           // failed or wrong SHA-256
	Bytes      int64         // received
	Took       time.Duration // from the first start to the last download's end
	PeakServed float64       // bytes per second, best 1 s window
}

func (c *FetchConfig) setDefaults() error {
	if c.Size <= 0 {
		c.Size = 5 << 20
	}
	if len(c.Waves) == 0 {
		c.Waves = []int{1, 100, 899}
	}
	if len(c.Starts) == 0 {
		c.Starts = []time.Duration{0, 10500 * time.Millisecond, 21400 * time.Millisecond}
	}
	if len(c.Starts) != len(c.Waves) {
		return fmt.Errorf("%d waves but %d start times", len(c.Waves), len(c.Starts))
	}
	if c.Rate <= 0 {
		c.Rate = 100
	}
	if c.Burst <= 0 {
		c.Burst = 20
	}
	return nil
}

// RunFetch runs the fetch control until every download has ended or ctx
// is cancelled.
func RunFetch(ctx context.Context, cfg FetchConfig) (*FetchResult, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	logf := cfg.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	url, want := cfg.URL, cfg.SHA256
	if url == "" {
		u, sum, stop, err := serveRandom(cfg.Size)
		if err != nil {
			return nil, err
		}
		defer stop()
		url = u
		if want == "" {
			want = sum
		}
		logf("serving %d bytes at %s", cfg.Size, url)
	}
	t := http.DefaultTransport.(*http.Transport).Clone() // as devicefw's simulated boards
	t.ResponseHeaderTimeout = 30 * time.Second
	client := &http.Client{Transport: t}
	defer t.CloseIdleConnections()

	var (
		received atomic.Int64
		res      FetchResult
		mu       sync.Mutex // guards res.Downloads, res.Failed, firstErr
		firstErr error
		wg       sync.WaitGroup
	)
	get := func() {
		defer wg.Done()
		n, sum, err := fetchHash(ctx, client, url, cfg.Token, &received)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
		case cfg.URL == "" && n != cfg.Size:
			err = fmt.Errorf("%d bytes, want %d", n, cfg.Size)
		default:
			if want == "" {
				want = sum // the first download sets what the others must hash to
			}
			if sum == want {
				res.Downloads++
				return
			}
			err = fmt.Errorf("sha256 %s, want %s", sum, want)
		}
		res.Failed++
		if firstErr == nil {
			firstErr = err
		}
	}

	// The bytes received, sampled every 100 ms, for the best second.
	sampled := make(chan struct{})
	stopSampling := make(chan struct{})
	// points is owned by the sampler until it closes sampled.
	var points []point
	go func() { // ends when stopSampling is closed
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		points = append(points, point{time.Now(), 0})
		for {
			select {
			case <-stopSampling:
				points = append(points, point{time.Now(), float64(received.Load())})
				return
			case now := <-tick.C:
				points = append(points, point{now, float64(received.Load())})
			}
		}
	}()

	start := time.Now()
	gap := time.Duration(float64(cfg.Burst) / cfg.Rate * float64(time.Second))
waves:
	for w, n := range cfg.Waves {
		if err := sleepUntil(ctx, start.Add(cfg.Starts[w])); err != nil {
			break
		}
		logf("wave %d: %d downloads at %s", w+1, n, time.Since(start).Round(time.Millisecond))
		next := time.Now()
		for i := 0; i < n; i++ {
			if i > 0 && i%cfg.Burst == 0 {
				next = next.Add(gap)
				if err := sleepUntil(ctx, next); err != nil {
					break waves
				}
			}
			wg.Add(1)
			go get() // ends with its download (ctx cancels it)
		}
	}
	wg.Wait()
	res.Took = time.Since(start)
	close(stopSampling)
	<-sampled
	res.Bytes, res.PeakServed = received.Load(), bestRate(points)
	if err := ctx.Err(); err != nil {
		return &res, err
	}
	if firstErr != nil {
		return &res, fmt.Errorf("%d of %d downloads failed, the first: %w", res.Failed, res.Failed+res.Downloads, firstErr)
	}
	return &res, nil
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// fetchHash GETs url and hashes its body as it comes, in 64 KiB reads as
// devicefw's simulated boards do.
func fetchHash(ctx context.Context, client *http.Client, url, token string, received *atomic.Int64) (int64, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		m, rerr := resp.Body.Read(buf)
		if m > 0 {
			h.Write(buf[:m])
			n += int64(m)
			received.Add(int64(m))
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return n, "", rerr
		}
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// serveRandom writes size random bytes to a temporary file and serves it
// on 127.0.0.1:0. It returns the file's URL, its SHA-256 and a stop that
// shuts the server down and removes the file.
func serveRandom(size int64) (url, sum string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "loadgen-fetch-")
	if err != nil {
		return "", "", nil, fmt.Errorf("fetch: %w", err)
	}
	fail := func(err error) (string, string, func(), error) {
		_ = os.RemoveAll(dir)
		return "", "", nil, fmt.Errorf("fetch: %w", err)
	}
	path := filepath.Join(dir, "build")
	f, err := os.Create(path)
	if err != nil {
		return fail(err)
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), io.LimitReader(rand.Reader, size))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, path) }),
		ReadHeaderTimeout: 10 * time.Second,
	}
	done := make(chan struct{})
	go func() { // ends when srv is closed
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return "http://" + ln.Addr().String() + "/build", hex.EncodeToString(h.Sum(nil)), func() {
		_ = srv.Close()
		<-done
		_ = os.RemoveAll(dir)
	}, nil
}
