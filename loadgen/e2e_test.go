package loadgen_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"switchyard/internal/testutil"
	"switchyard/loadgen"
)

// The end-to-end test runs the load generator for a couple of seconds
// against the real controlplane binary on free loopback ports. It asserts
// correctness only (every event delivered, every toggle confirmed); the
// figures are printed, never asserted.

func TestMain(m *testing.M) {
	if os.Getenv(boardsChildEnv) != "" { // the boards' process of a BoardsApart run (see boardsCommand)
		os.Exit(loadgen.BoardsMain(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(testutil.Run(m))
}

// boardsChildEnv makes this test binary the boards' process.
const boardsChildEnv = "LOADGEN_TEST_BOARDS_CHILD"

// boardsCommand runs this test binary as the boards' process.
func boardsCommand(t *testing.T) []string {
	t.Setenv(boardsChildEnv, "1") // the child inherits it; this process has passed TestMain
	return []string{os.Args[0]}
}

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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := loadgen.Config{
		Label: "smoke", MQTT: "tcp://" + mqttAddr, WS: "ws://" + httpAddr + "/ws",
		Boards: 4, Browsers: 3, Rate: 20, Warmup: 300 * time.Millisecond, Duration: 1500 * time.Millisecond,
		ToggleEvery: 100 * time.Millisecond, PIDs: []int{pid},
	}
	t.Run("boards in this process", func(t *testing.T) { checkRun(ctx, t, cfg) })
	// The browsers read by a few goroutines in epoll_wait: the same checks.
	if runtime.GOOS == "linux" {
		epoll := cfg
		epoll.Readers, epoll.IDPrefix = "epoll", "epoll"
		t.Run("browsers read through epoll", func(t *testing.T) { checkRun(ctx, t, epoll) })
	}
	// The boards in a process of their own: the same checks hold (the
	// send times, LEDs and toggle legs cross the shared file).
	cfg.BoardsApart, cfg.BoardsCommand, cfg.IDPrefix = true, boardsCommand(t), "apart"
	t.Run("boards apart", func(t *testing.T) { checkRun(ctx, t, cfg) })

	// Idle: memory per connection is measured (not asserted), nothing dropped.
	idle, err := loadgen.Run(ctx, loadgen.Config{
		Label: "idle", MQTT: "tcp://" + mqttAddr, WS: "ws://" + httpAddr + "/ws",
		Boards: 5, Browsers: 5, Idle: true, PIDs: []int{pid}, IDPrefix: "idle",
	})
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	loadgen.WriteTable(&table, idle)
	t.Logf("idle figures:\n%s", table.String())
	if idle.Dropped != 0 {
		t.Errorf("idle: %d browsers dropped", idle.Dropped)
	}
}

// TestRunAgainstMosquitto: browsers speaking MQTT over WebSocket to
// Debian's mosquitto (the comparison's second target), read both ways.
func TestRunAgainstMosquitto(t *testing.T) {
	m := testutil.StartMosquittoWS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := loadgen.Config{
		Label: "smoke", Target: loadgen.Mosquitto, MQTT: m.URL, WS: "ws://127.0.0.1:" + m.WSPort,
		Boards: 4, Browsers: 3, Rate: 20, Warmup: 300 * time.Millisecond, Duration: 1500 * time.Millisecond,
		ToggleEvery: 100 * time.Millisecond, IDPrefix: "mq", PIDs: []int{m.Pid()},
	}
	t.Run("goroutines", func(t *testing.T) { checkRun(ctx, t, cfg) })
	if runtime.GOOS == "linux" {
		cfg.Readers, cfg.IDPrefix = "epoll", "mqepoll"
		t.Run("epoll", func(t *testing.T) { checkRun(ctx, t, cfg) })
	}
}

// checkRun runs cfg and checks that everything was delivered once, every
// toggle confirmed and traced, and the receipts ordered.
func checkRun(ctx context.Context, t *testing.T, cfg loadgen.Config) {
	res, err := loadgen.Run(ctx, cfg)
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
	if res.TogglesMax == 0 || res.Toggles != res.TogglesMax || res.ToggleEach.Count() != uint64(3*res.Toggles) ||
		res.ToggleLast.Count() != uint64(res.Toggles) || res.ReadToggleLast.Count() != uint64(res.Toggles) {
		t.Errorf("toggles confirmed %d of %d (%d receipts, %d and %d last receipts): want all, by every browser, one last each",
			res.Toggles, res.TogglesMax, res.ToggleEach.Count(), res.ToggleLast.Count(), res.ReadToggleLast.Count())
	}
	// Every toggle is traced, and its board's answer seen leaving.
	if len(res.ToggleTrace) != res.TogglesMax || res.ToggleFanOut.Count() != uint64(res.Toggles) {
		t.Errorf("%d toggles traced, %d answers seen leaving their board: want %d and %d", len(res.ToggleTrace), res.ToggleFanOut.Count(), res.TogglesMax, res.Toggles)
	}
	for _, s := range res.ToggleTrace {
		if s.LastBrowser < 0 || s.Confirmers != 3 || s.ToBoard <= 0 || s.LEDOut < s.ToBoard || s.Last < s.LEDOut {
			t.Errorf("toggle traced as %+v: want 3 confirmers, the board's receipt, then its answer, then the last browser's", s)
		}
	}
	// Socket receipt comes before the reader gets to an event, each time,
	// and a toggle's last receipt is its slowest.
	if res.ReadLatency.Count() != res.Latency.Count() || res.Latency.Max() > res.ReadLatency.Max() ||
		res.ReadToggleEach.Count() != res.ToggleEach.Count() || res.ToggleEach.Max() > res.ReadToggleEach.Max() ||
		res.ToggleLast.Max() != res.ToggleEach.Max() || res.ReadToggleLast.Max() != res.ReadToggleEach.Max() {
		t.Errorf("socket vs reader: latency %d samples max %v / %d max %v; toggles %d max %v / %d max %v; last max %v / %v",
			res.Latency.Count(), res.Latency.Max(), res.ReadLatency.Count(), res.ReadLatency.Max(),
			res.ToggleEach.Count(), res.ToggleEach.Max(), res.ReadToggleEach.Count(), res.ReadToggleEach.Max(),
			res.ToggleLast.Max(), res.ReadToggleLast.Max())
	}
	if res.ErrorEvts != 0 {
		t.Errorf("%d error events", res.ErrorEvts)
	}
	if res.PeakRSS == 0 {
		t.Error("no RSS sampled from /proc")
	}
}

// TestGuessersAgainstControlPlane: the guessers of the credentials
// benchmark reach the real binary, each from its own address, and are
// throttled after their first wrong passwords (429 over HTTP, not
// authorized over MQTT) while the fleet runs.
func TestGuessersAgainstControlPlane(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	body := "mqtt: {listen: '127.0.0.1:0'}\nhttp: {listen: '127.0.0.1:0'}\nstorage: {path: ''}\nlog: {level: info}\n" +
		"auth:\n  anonymous: local\n  users:\n    - {name: admin, role: admin, password_hash: '" + string(h) + "'}\n"
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cp, err := testutil.StartControlPlane(t, exec.Command(testutil.BuildBinary(t, "switchyard/cmd/controlplane"), "--config", cfg), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := loadgen.Run(ctx, loadgen.Config{
		Label: "guessers", MQTT: "tcp://" + cp.MQTTAddr, WS: "ws://" + cp.HTTPAddr + "/ws",
		Boards: 2, Browsers: 1, Rate: 5, Warmup: 300 * time.Millisecond, Duration: 1500 * time.Millisecond, ToggleEvery: -1,
		Guess: loadgen.Guess{N: 2, User: "admin", HTTP: "http://" + cp.HTTPAddr, MQTT: "tcp://" + cp.MQTTAddr, From: "127.0.0.10"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Guess == nil {
		t.Fatal("no guesser figures")
	}
	t.Logf("guessers (printed, not asserted): %v", res.Guess)
	for answer := range res.Guess.Answers {
		switch answer {
		case "http 401", "http 429", "mqtt bad credentials", "mqtt not authorized":
		default:
			t.Errorf("a guesser got %q", answer)
		}
	}
	if res.Guess.Answers["http 429"] == 0 || res.Guess.Answers["mqtt not authorized"] == 0 {
		t.Errorf("answers %v: want the guessers throttled over HTTP and MQTT", res.Guess.Answers)
	}
	if res.Lost != 0 || res.Dropped != 0 {
		t.Errorf("lost %d, dropped %d: the fleet should not notice", res.Lost, res.Dropped)
	}
}
