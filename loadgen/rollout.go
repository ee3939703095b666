package loadgen

// The rollout benchmark: a firmware rollout to a running fleet of simulated
// boards, measured from outside through the control plane's HTTP API,
// /metrics and /proc (issue 12's benchmark).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// RolloutConfig describes one rollout benchmark run.
type RolloutConfig struct {
	HTTP   string // control plane base URL, e.g. http://127.0.0.1:8080
	Token  string // an admin's API token (Bearer)
	Boards int    // simulated boards expected online before the start
	IDs    string // id prefix of those boards ("sim": sim-1 … sim-N); empty: every board
	// Size of the random build uploaded for platform Platform (default 5 MiB, "sim").
	Size     int64
	Platform string
	Version  string // default "bench-<unix time>"
	// The rollout: Waves as in the API ([1,"10%","100%"] is "1,10%,100%"),
	// HealthWindow, MaxFailures, Parallel (default 1000).
	Waves        string
	HealthWindow time.Duration
	MaxFailures  int
	Parallel     int
	PID          int           // the control plane's pid, for CPU and RSS (0: not measured)
	Timeout      time.Duration // how long the rollout may take (default 10m)
	// BytesMetric is the /metrics counter of firmware bytes served.
	BytesMetric string
	Log         func(format string, args ...any) // progress, may be nil
}

// RolloutResult is what one run measured.
type RolloutResult struct {
	FirmwareSize int64
	Boards       int
	State        string         // the rollout's final state
	Counts       map[string]int // boards per state at the end
	Sent         int            // boards that were sent a job
	TimeToDone   time.Duration  // from POST /api/rollouts to a finished state
	Waves        []time.Duration
	CPU          time.Duration // control plane CPU during the rollout
	IdleRSS      int64         // control plane peak RSS over idleWindow with the fleet connected, before the upload
	PeakRSS      int64         // its peak RSS during the upload and rollout
	BytesServed  float64       // firmware bytes served during the rollout (from /metrics)
	PeakServed   float64       // bytes per second, best 1 s window
	MeanServed   float64       // bytes per second over the span bytes were being served
}

type rolloutJSON struct {
	ID     string         `json:"id"`
	State  string         `json:"state"`
	Counts map[string]int `json:"counts"`
	Waves  []struct {
		State  string `json:"state"`
		Boards []struct {
			ID    string `json:"id"`
			State string `json:"state"`
			Job   string `json:"job"`
		} `json:"boards"`
	} `json:"waves"`
}

// idleWindow is how long the idle fleet's RSS is watched before the upload:
// a few of the control plane's collections at idle (one every 4 s with
// 1,000 boards).
const idleWindow = 10 * time.Second

// RunRollout runs the benchmark: it waits for the fleet, uploads a random
// build, starts a rollout on the boards and follows it to its end.
func RunRollout(ctx context.Context, cfg RolloutConfig) (*RolloutResult, error) {
	if cfg.Size <= 0 {
		cfg.Size = 5 << 20
	}
	if cfg.Platform == "" {
		cfg.Platform = "sim"
	}
	if cfg.Version == "" {
		cfg.Version = "bench-" + strconv.FormatInt(time.Now().Unix(), 10)
	}
	if cfg.Waves == "" {
		cfg.Waves = "1,10%,100%"
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 1000
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if cfg.BytesMetric == "" {
		cfg.BytesMetric = "switchyard_firmware_served_bytes_total"
	}
	logf := cfg.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	c := &apiClient{base: strings.TrimRight(cfg.HTTP, "/"), token: cfg.Token}

	ids, err := waitFleet(ctx, c, cfg.IDs, cfg.Boards, logf)
	if err != nil {
		return nil, err
	}
	res := &RolloutResult{FirmwareSize: cfg.Size, Boards: len(ids)}
	var pids []int
	if cfg.PID > 0 {
		pids = []int{cfg.PID}
	}
	// The idle fleet's RSS is its peak over idleWindow, compared with the
	// rollout's peak: right after the last board is heard from, the
	// control plane is still growing into the fleet (19 MB more about a
	// second later in one run), and its heap swings with each collection.
	idleSmp := startSampler(pids)
	select {
	case <-time.After(idleWindow):
	case <-ctx.Done():
	}
	idle, err := idleSmp.finish()
	if err != nil {
		return nil, fmt.Errorf("sample the control plane: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res.IdleRSS = idle
	smp := startSampler(pids)
	sampling := true
	defer func() {
		if sampling {
			smp.finish()
		}
	}()

	sha, err := upload(ctx, c, cfg)
	if err != nil {
		return nil, err
	}
	logf("uploaded %d bytes as %s", cfg.Size, sha)
	bytes0, err := c.metric(ctx, cfg.BytesMetric)
	if err != nil {
		return nil, err
	}
	cpu0, err := readProcOrZero(pids)
	if err != nil {
		return nil, err
	}
	var waves []any
	for _, w := range strings.Split(cfg.Waves, ",") {
		w = strings.TrimSpace(w)
		if n, err := strconv.Atoi(w); err == nil {
			waves = append(waves, n)
		} else {
			waves = append(waves, w)
		}
	}
	body, _ := json.Marshal(map[string]any{
		"firmware": sha, "target": map[string]any{"ids": ids}, "waves": waves,
		"health_window": cfg.HealthWindow.String(), "max_failures": cfg.MaxFailures, "parallel": cfg.Parallel,
	})
	var r rolloutJSON
	start := time.Now()
	if err := c.do(ctx, http.MethodPost, "/api/rollouts", "application/json", bytes.NewReader(body), http.StatusCreated, &r); err != nil {
		return nil, fmt.Errorf("start rollout: %w", err)
	}
	logf("rollout %s started on %d boards at unix ms %d", r.ID, len(ids), time.Now().UnixMilli())

	// Follow it: poll the rollout and the bytes counter every 250 ms.
	deadline := time.Now().Add(cfg.Timeout)
	points := []point{{start, bytes0}}
	waveDone := map[int]bool{}
	for !finished(r.State) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("rollout %s still %s after %s (counts %v)", r.ID, r.State, cfg.Timeout, r.Counts)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond): // poll: the API has no event to wait for here
		}
		id := r.ID
		r = rolloutJSON{} // Unmarshal would merge into the old counts map
		if err := c.do(ctx, http.MethodGet, "/api/rollouts/"+url.PathEscape(id), "", nil, http.StatusOK, &r); err != nil {
			return nil, err
		}
		b, err := c.metric(ctx, cfg.BytesMetric)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		points = append(points, point{now, b})
		for i, w := range r.Waves {
			if w.State == "done" && !waveDone[i] {
				waveDone[i] = true
				res.Waves = append(res.Waves, now.Sub(start))
				logf("wave %d done after %s (counts %v)", i+1, now.Sub(start).Round(time.Millisecond), r.Counts)
			}
		}
	}
	res.TimeToDone = time.Since(start)
	cpu1, err := readProcOrZero(pids)
	if err != nil {
		return nil, err
	}
	res.CPU = cpu1.cpu - cpu0.cpu
	sampling = false
	peak, err := smp.finish()
	if err != nil {
		return nil, err
	}
	res.PeakRSS = peak
	res.State, res.Counts = r.State, r.Counts
	for _, w := range r.Waves {
		for _, b := range w.Boards {
			if b.Job != "" {
				res.Sent++
			}
		}
	}
	last := points[len(points)-1]
	res.BytesServed = last.bytes - bytes0
	// The best rate over any window of at least 1 s, and the mean from the
	// first to the last sample in which the counter moved.
	res.PeakServed = bestRate(points)
	first, end := -1, -1
	for i := 1; i < len(points); i++ {
		if points[i].bytes > points[i-1].bytes {
			if first < 0 {
				first = i - 1
			}
			end = i
		}
	}
	if first >= 0 {
		if d := points[end].at.Sub(points[first].at).Seconds(); d > 0 {
			res.MeanServed = (points[end].bytes - points[first].bytes) / d
		}
	}
	return res, nil
}

// point is a byte counter's value at a time.
type point struct {
	at    time.Time
	bytes float64
}

// bestRate returns the highest rate between two of points (in time order)
// at least 1 s apart: for each point, over the shortest such window ending
// there.
func bestRate(points []point) float64 {
	var best float64
	for i := 1; i < len(points); i++ {
		for j := i - 1; j >= 0; j-- {
			if d := points[i].at.Sub(points[j].at); d >= time.Second {
				best = max(best, (points[i].bytes-points[j].bytes)/d.Seconds())
				break
			}
		}
	}
	return best
}

func finished(state string) bool { return state == "done" || state == "halted" || state == "aborted" }

func readProcOrZero(pids []int) (procStat, error) {
	if len(pids) == 0 {
		return procStat{}, nil
	}
	return readProc(pids)
}

// waitFleet polls GET /api/devices until n boards whose id starts with
// prefix+"-" are online, and returns their ids.
func waitFleet(ctx context.Context, c *apiClient, prefix string, n int, logf func(string, ...any)) ([]string, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var devs []struct {
			ID     string `json:"id"`
			Online bool   `json:"online"`
		}
		if err := c.do(ctx, http.MethodGet, "/api/devices", "", nil, http.StatusOK, &devs); err != nil {
			return nil, err
		}
		var ids []string
		for _, d := range devs {
			if d.Online && (prefix == "" || strings.HasPrefix(d.ID, prefix+"-")) {
				ids = append(ids, d.ID)
			}
		}
		if len(ids) >= n {
			logf("%d boards online", len(ids))
			return ids, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d boards online after 2m", len(ids), n)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond): // poll: no event says "the fleet is up"
		}
	}
}

// upload posts cfg.Size random bytes as a build and returns its sha256.
func upload(ctx context.Context, c *apiClient, cfg RolloutConfig) (string, error) {
	q := url.Values{"version": {cfg.Version}, "platform": {cfg.Platform}}
	var fw struct {
		SHA256 string `json:"sha256"`
	}
	body := io.LimitReader(rand.Reader, cfg.Size)
	if err := c.do(ctx, http.MethodPost, "/api/firmware?"+q.Encode(), "application/octet-stream", body, http.StatusCreated, &fw); err != nil {
		return "", fmt.Errorf("upload firmware: %w", err)
	}
	return fw.SHA256, nil
}

// apiClient calls the control plane's HTTP API.
type apiClient struct {
	base, token string
	hc          http.Client
}

func (c *apiClient) do(ctx context.Context, method, path, ctype string, body io.Reader, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// metric returns the value of an unlabelled counter or gauge on /metrics.
func (c *apiClient) metric(ctx context.Context, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("GET /metrics: %w", err)
	}
	return 0, errors.New("GET /metrics: no " + name)
}
