package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"switchyard/internal/testutil"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// sample is the control plane's resource use at one moment.
type sample struct {
	at         time.Duration
	goroutines int
	fds        int
	rssKiB     int
}

func readSample(t *testing.T, pid int, metricsURL string, at time.Duration) sample {
	t.Helper()
	s := sample{at: at}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("fds: %v", err)
	}
	s.fds = len(ents)
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if m := regexp.MustCompile(`VmRSS:\s+(\d+)`).FindSubmatch(status); m != nil {
		s.rssKiB, _ = strconv.Atoi(string(m[1]))
	}
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if m := regexp.MustCompile(`(?m)^go_goroutines (\d+)`).FindSubmatch(body); m != nil {
		s.goroutines, _ = strconv.Atoi(string(m[1]))
	}
	return s
}

// TestSoak runs boards publishing count at 1 Hz and browsers watching
// them. Every browser must see every count of every board, in order.
func TestSoak(t *testing.T) {
	duration := envDuration("SOAK_DURATION", 12*time.Second)
	nBoards := envInt("SOAK_BOARDS", 50)
	nBrowsers := envInt("SOAK_BROWSERS", 10)
	interval := envDuration("SOAK_INTERVAL", time.Second)

	dir := t.TempDir()
	bin := testutil.BuildBinary(t, "switchyard/cmd/controlplane")
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("mqtt: {listen: '127.0.0.1:0'}\nhttp: {listen: '127.0.0.1:0'}\nlog: {level: warn}\n"), 0o644)
	// Warn level hides the serving line: ask for info just for it.
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Env = append(os.Environ(), "CONTROLPLANE_LOG_LEVEL=info")
	cp, err := testutil.StartControlPlane(t, cmd, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	mqttAddr, httpAddr, pid := cp.MQTTAddr, cp.HTTPAddr, cp.Pid()
	metrics := "http://" + httpAddr + "/metrics"

	// Browsers: count, per board, the next count each expects.
	type seen struct {
		mu   sync.Mutex
		next map[string]int64 // board → next expected count
		lost atomic.Int64
		got  atomic.Int64
	}
	browsers := make([]*seen, nBrowsers)
	var bwg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	boardsCtx, boardsCtxCancel := context.WithCancel(ctx)
	defer boardsCtxCancel()
	for i := range browsers {
		s := &seen{next: map[string]int64{}}
		browsers[i] = s
		c, _, err := websocket.DefaultDialer.Dial("ws://"+httpAddr+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		bwg.Add(1)
		go func() { // ends when the test closes the connection
			defer bwg.Done()
			go func() { <-ctx.Done(); c.Close() }() // ends at the end of the test
			for {
				_, data, err := c.ReadMessage()
				if err != nil {
					return
				}
				var evs []struct {
					Device string          `json:"device"`
					Label  string          `json:"label"`
					Value  json.RawMessage `json:"value"`
				}
				if data[0] != '[' {
					data = append(append([]byte{'['}, data...), ']')
				}
				if json.Unmarshal(data, &evs) != nil {
					s.lost.Add(1 << 20) // a broken frame: fail loudly
					return
				}
				s.mu.Lock()
				for _, e := range evs {
					if e.Label != "count" {
						continue
					}
					n, _ := strconv.ParseInt(string(e.Value), 10, 64)
					if want, ok := s.next[e.Device]; ok && n > want {
						s.lost.Add(n - want)
					}
					s.next[e.Device] = n + 1
					s.got.Add(1)
				}
				s.mu.Unlock()
			}
		}()
	}

	// Boards: one paho connection each, count at the interval from 0.
	var published atomic.Int64
	var sentMu sync.Mutex
	lastSent := map[string]int64{} // board → last count published
	var boardsWG sync.WaitGroup
	start := time.Now()
	for i := range nBoards {
		id := fmt.Sprintf("soak-%d", i)
		c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://"+mqttAddr).SetClientID(id).
			SetAutoReconnect(false).SetWill("devices/"+id+"/status", "offline", 1, true))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("board %s: %v", id, tok.Error())
		}
		c.Publish("devices/"+id+"/status", 1, true, "online")
		boardsWG.Add(1)
		go func() { // ends when the test's context is cancelled
			defer boardsWG.Done()
			defer c.Disconnect(100)
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for n := 0; ; n++ {
				tok := c.Publish("devices/"+id+"/count", 0, false, strconv.Itoa(n))
				tok.WaitTimeout(5 * time.Second)
				published.Add(1)
				sentMu.Lock()
				lastSent[id] = int64(n)
				sentMu.Unlock()
				select {
				case <-tick.C:
				case <-boardsCtx.Done():
					return
				}
			}
		}()
	}

	var samples []sample
	every := max(duration/10, time.Second)
	deadline := time.After(duration)
	sampleTick := time.NewTicker(every)
	defer sampleTick.Stop()
loop:
	for {
		select {
		case <-sampleTick.C:
			samples = append(samples, readSample(t, pid, metrics, time.Since(start)))
		case <-deadline:
			break loop
		}
	}
	boardsCtxCancel()
	boardsWG.Wait()
	// Every browser must now get every board's last count: poll with a
	// deadline (nothing signals "delivered everywhere").
	delivered := func() bool {
		sentMu.Lock()
		defer sentMu.Unlock()
		for _, s := range browsers {
			s.mu.Lock()
			for id, n := range lastSent {
				if s.next[id] != n+1 {
					s.mu.Unlock()
					return false
				}
			}
			s.mu.Unlock()
		}
		return true
	}
	if err := testutil.Eventually(15*time.Second, testutil.Until("the last counts at every browser", delivered)); err != nil {
		t.Error(err)
	}
	cancel()
	bwg.Wait()
	cp.Signal(syscall.SIGTERM)

	var lost, got int64
	for _, s := range browsers {
		lost += s.lost.Load()
		got += s.got.Load()
	}
	t.Logf("soak: %v, %d boards, %d browsers: %d counts published, %d delivered, %d lost", duration.Round(time.Second), nBoards, nBrowsers, published.Load(), got, lost)
	for _, s := range samples {
		t.Logf("  t=%5.0fs goroutines=%5d fds=%5d rss=%6d KiB", s.at.Seconds(), s.goroutines, s.fds, s.rssKiB)
	}
	if lost != 0 {
		t.Errorf("%d events lost", lost)
	}
	if want := published.Load() * int64(nBrowsers); got != want {
		t.Errorf("%d counts delivered, want %d (every count to every browser)", got, want)
	}
	if len(samples) < 3 {
		t.Fatalf("only %d samples", len(samples))
	}
	// Flat: compared with the first sample after the load started, the
	// last may not have grown beyond a margin (steady state, no leak).
	first, last := samples[1], samples[len(samples)-1]
	if last.goroutines > first.goroutines+first.goroutines/10+20 {
		t.Errorf("goroutines grew: %d → %d", first.goroutines, last.goroutines)
	}
	if last.fds > first.fds+first.fds/10+10 {
		t.Errorf("file descriptors grew: %d → %d", first.fds, last.fds)
	}
	if last.rssKiB > first.rssKiB*3/2+20*1024 {
		t.Errorf("RSS grew: %d → %d KiB", first.rssKiB, last.rssKiB)
	}
}
