package loadgen_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testutil"
	"switchyard/loadgen"
)

// The end-to-end test runs the load generator for a couple of seconds
// against the real controlplane binary on free loopback ports. It asserts
// correctness only (every event delivered, every toggle confirmed); the
// figures are printed, never asserted.

func TestMain(m *testing.M) { os.Exit(testutil.Run(m)) }

// startControlPlane runs the binary and returns its MQTT and HTTP addresses
// and pid; cleanup kills it.
func startControlPlane(t *testing.T) (mqttAddr, httpAddr string, pid int) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	body := "mqtt: {listen: '127.0.0.1:0'}\nhttp: {listen: '127.0.0.1:0'}\nstorage: {path: ''}\nlog: {level: info}\n"
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testutil.BuildBinary(t, "switchyard/cmd/controlplane"), "--config", cfg)
	cp, err := testutil.StartControlPlane(t, cmd, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return cp.MQTTAddr, cp.HTTPAddr, cp.Pid()
}

func TestRunAgainstControlPlane(t *testing.T) {
	mqttAddr, httpAddr, pid := startControlPlane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := loadgen.Run(ctx, loadgen.Config{
		Label: "smoke", MQTT: "tcp://" + mqttAddr, WS: "ws://" + httpAddr + "/ws",
		Boards: 4, Browsers: 3, Rate: 20, Warmup: 300 * time.Millisecond, Duration: 1500 * time.Millisecond,
		ToggleEvery: 100 * time.Millisecond, PIDs: []int{pid},
	})
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	loadgen.WriteTable(&table, res)
	t.Logf("figures (printed, not asserted):\n%s", table.String())
	if res.Published == 0 || res.Expected != res.Published*3 {
		t.Errorf("published %d, expected %d: want some, each for 3 browsers", res.Published, res.Expected)
	}
	if res.Lost != 0 || res.Delivered != res.Expected || res.Duplicates != 0 || res.Dropped != 0 {
		t.Errorf("delivered %d of %d, lost %d, duplicates %d, dropped %d: want everything once",
			res.Delivered, res.Expected, res.Lost, res.Duplicates, res.Dropped)
	}
	if res.TogglesMax == 0 || res.Toggles != res.TogglesMax || res.Toggle.Count() != uint64(3*res.Toggles) {
		t.Errorf("toggles confirmed %d of %d (%d receipts): want all, by every browser", res.Toggles, res.TogglesMax, res.Toggle.Count())
	}
	// Socket receipt comes before the reader gets to an event, each time.
	if res.ReadLatency.Count() != res.Latency.Count() || res.Latency.Max() > res.ReadLatency.Max() ||
		res.ReadToggle.Count() != res.Toggle.Count() || res.Toggle.Max() > res.ReadToggle.Max() {
		t.Errorf("socket vs reader: latency %d samples max %v / %d max %v; toggles %d max %v / %d max %v",
			res.Latency.Count(), res.Latency.Max(), res.ReadLatency.Count(), res.ReadLatency.Max(),
			res.Toggle.Count(), res.Toggle.Max(), res.ReadToggle.Count(), res.ReadToggle.Max())
	}
	if res.ErrorEvts != 0 {
		t.Errorf("%d error events", res.ErrorEvts)
	}
	if res.PeakRSS == 0 {
		t.Error("no RSS sampled from /proc")
	}

	// Idle: memory per connection is measured (not asserted), nothing dropped.
	idle, err := loadgen.Run(ctx, loadgen.Config{
		Label: "idle", MQTT: "tcp://" + mqttAddr, WS: "ws://" + httpAddr + "/ws",
		Boards: 5, Browsers: 5, Idle: true, PIDs: []int{pid}, IDPrefix: "idle",
	})
	if err != nil {
		t.Fatal(err)
	}
	table.Reset()
	loadgen.WriteTable(&table, idle)
	t.Logf("idle figures:\n%s", table.String())
	if idle.Dropped != 0 {
		t.Errorf("idle: %d browsers dropped", idle.Dropped)
	}
}
