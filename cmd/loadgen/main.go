// Command loadgen drives a running Switchyard control plane (or a peer:
// Mosquitto, Node-RED) with simulated boards and browsers and reports what
// the browsers saw. It only wires flags to package loadgen.
//
//	loadgen --boards 100 --browsers 1000 --rate 1 --duration 20s --csv out.csv
//	loadgen --idle --boards 10000 --browsers 10000 --pid 1234
//	loadgen --sweep 1,2,5,10,20,50 --boards 100 --browsers 100
//	loadgen report --csv out.csv --svg chart.svg
//	loadgen ports 3
//	loadgen rollout --boards 1000 --ids sim --token T --pid 1234
//	loadgen fetch --url http://127.0.0.1:8080/firmware/<sha256> --token T
//	loadgen --boards 1000 --browsers 100 --guessers 50 --guess-user admin
//	loadgen --boards 100 --browsers 1000 --boards-apart   (boards in a second process)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"syscall"
	"time"

	"switchyard/loadgen"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "report":
			return report(args[1:], stdout, stderr)
		case "ports":
			return ports(args[1:], stdout, stderr)
		case "rollout":
			return rolloutBench(args[1:], stdout, stderr)
		case "fetch":
			return fetchControl(args[1:], stdout, stderr)
		case "boards": // the boards' process of --boards-apart, started by the load generator itself
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return loadgen.BoardsMain(ctx, args[1:], os.Stdin, stdout, stderr)
		}
	}
	fl := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fl.SetOutput(stderr)
	mqttURL := fl.String("mqtt", "tcp://127.0.0.1:1883", "MQTT broker URL the boards connect to")
	httpURL := fl.String("http", "http://127.0.0.1:8080", "control plane (or Node-RED) HTTP base URL; browsers use <http>/ws")
	wsURL := fl.String("ws", "", "browsers' WebSocket URL, overriding <http>/ws (for mosquitto: its websockets listener)")
	target := fl.String("target", "switchyard", "system under test: switchyard, mosquitto or nodered")
	label := fl.String("label", "run", "workload name in the outputs")
	boards := fl.Int("boards", 10, "simulated boards (one MQTT connection each)")
	browsers := fl.Int("browsers", 5, "simulated browsers")
	rate := fl.Float64("rate", 1, "count messages per second per board")
	duration := fl.Duration("duration", 10*time.Second, "measured window")
	warmup := fl.Duration("warmup", 2*time.Second, "load before the window")
	drain := fl.Duration("drain", 5*time.Second, "how long browsers may still receive the window's events after it")
	toggleEvery := fl.Duration("toggle-every", 250*time.Millisecond, "toggle period during the window, one in flight (negative: none); the window over it is how many toggles the toggle p99 is of (Switchyard's default command rate allows one browser 10 a second)")
	defReaders := "goroutines"
	if runtime.GOOS == "linux" {
		defReaders = "epoll"
	}
	readers := fl.String("readers", defReaders, "how the browsers are read: epoll (Linux: --pollers goroutines in epoll_wait, so a thousand browsers take little of the target's cores) or goroutines (one each, with gorilla/websocket)")
	pollers := fl.Int("pollers", 1, "goroutines reading the browsers with --readers epoll")
	boardsApart := fl.Bool("boards-apart", false, "play the boards in a process of their own, so the browsers' reading never delays a board's answer (as on real hardware)")
	idle := fl.Bool("idle", false, "connect boards and browsers without traffic and measure memory per connection")
	sweep := fl.String("sweep", "", "comma-separated per-board rates: run each until p99 > --knee-p99 or anything is lost")
	kneeP99 := fl.Duration("knee-p99", 100*time.Millisecond, "the sweep stops past this p99")
	pids := fl.String("pid", "", "comma-separated pids of the processes under test (CPU seconds, RSS from /proc)")
	csvPath := fl.String("csv", "", "append the figures to this CSV file")
	svgPath := fl.String("svg", "", "draw latency against load from every row of --csv into this SVG file")
	toggleTrace := fl.String("toggle-trace", "", "write every toggle (its legs, the last browser and what it waited behind) as CSV to this file")
	timeline := fl.String("timeline", "", "write the window second by second (receipts, those over 10 ms, the slowest) as CSV to this file")
	prefix := fl.String("prefix", "devices", "topic prefix")
	idPrefix := fl.String("id-prefix", "lg", "board ids are <id-prefix>-<n>")
	guessers := fl.Int("guessers", 0, "password guessers hammering the logins during the run: even ones POST /login, odd ones MQTT CONNECT, with wrong passwords")
	guessUser := fl.String("guess-user", "admin", "the user name the guessers try")
	guessFrom := fl.String("guess-from", "127.0.0.10", "local address of guesser 0; guesser i uses the next i-th (each its own address); empty: all from the system's choice")
	verbose := fl.Bool("v", false, "log progress")
	cpuProfile := fl.String("cpuprofile", "", "write the load generator's own CPU profile to this file (is it the bottleneck?)")
	traceFile := fl.String("trace", "", "write the load generator's own execution trace to this file (go tool trace)")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	fail := func(err error) int {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
	tg, err := loadgen.ParseTarget(*target)
	if err != nil {
		return fail(err)
	}
	var pidList []int
	for _, s := range strings.Split(*pids, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := strconv.Atoi(s)
		if err != nil || p <= 0 {
			return fail(fmt.Errorf("--pid: bad pid %q", s))
		}
		pidList = append(pidList, p)
	}
	ws := *wsURL
	if ws == "" {
		if tg == loadgen.Mosquitto {
			return fail(errors.New("--ws is required with --target mosquitto (its websockets listener)"))
		}
		ws = "ws" + strings.TrimPrefix(strings.TrimSuffix(*httpURL, "/"), "http") + "/ws"
	}
	for _, u := range []string{*mqttURL, ws} {
		if err := loopbackOnly(u); err != nil {
			return fail(err)
		}
	}
	raiseFileLimit(log)
	for _, p := range []struct {
		flag, path string
		start      func(io.Writer) error
		stop       func()
	}{
		{"--cpuprofile", *cpuProfile, pprof.StartCPUProfile, pprof.StopCPUProfile},
		{"--trace", *traceFile, trace.Start, trace.Stop},
	} {
		if p.path == "" {
			continue
		}
		stopProfile, err := startProfile(p.path, p.start, p.stop)
		if err != nil {
			return fail(fmt.Errorf("%s: %w", p.flag, err))
		}
		defer stopProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg := loadgen.Config{Label: *label, Target: tg, MQTT: *mqttURL, WS: ws, Prefix: *prefix,
		Boards: *boards, Browsers: *browsers, Rate: *rate, Warmup: *warmup, Duration: *duration,
		Drain: *drain, ToggleEvery: *toggleEvery, Idle: *idle, BoardsApart: *boardsApart, Readers: *readers, Pollers: *pollers, PIDs: pidList, IDPrefix: *idPrefix, Logger: log,
		Guess: loadgen.Guess{N: *guessers, User: *guessUser, HTTP: *httpURL, MQTT: *mqttURL, From: *guessFrom}}
	rates := []float64{*rate}
	if *sweep != "" {
		rates = rates[:0]
		for _, s := range strings.Split(*sweep, ",") {
			v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || v <= 0 {
				return fail(fmt.Errorf("--sweep: bad rate %q", s))
			}
			rates = append(rates, v)
		}
	}
	var knee float64
	for i, r := range rates {
		cfg.Rate = r
		res, err := loadgen.Run(ctx, cfg)
		if err != nil {
			return fail(err)
		}
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		if err := loadgen.WriteTable(stdout, res); err != nil {
			return fail(err)
		}
		if res.Guess != nil {
			fmt.Fprintln(stdout, res.Guess)
		}
		if *csvPath != "" {
			if err := loadgen.AppendCSV(*csvPath, res.Row()); err != nil {
				return fail(err)
			}
		}
		if *timeline != "" {
			if err := writeFile(*timeline, "timeline", func(w io.Writer) error { return loadgen.WriteTimeline(w, res) }); err != nil {
				return fail(err)
			}
		}
		if *toggleTrace != "" {
			if err := writeToggleTrace(*toggleTrace, res); err != nil {
				return fail(err)
			}
		}
		if *sweep == "" {
			break
		}
		if res.Lost > 0 || res.Dropped > 0 || res.Latency.Quantile(0.99) > *kneeP99 {
			fmt.Fprintf(stdout, "\nsweep: past the knee at %g Hz per board (p99 %v, lost %d, dropped %d)\n",
				r, res.Latency.Quantile(0.99), res.Lost, res.Dropped)
			break
		}
		knee = res.EventsPerS
	}
	if *sweep != "" {
		fmt.Fprintf(stdout, "knee (%s): %.0f delivered events/s with p99 ≤ %v and nothing lost\n", tg, knee, *kneeP99)
	}
	if *svgPath != "" {
		if *csvPath == "" {
			return fail(errors.New("--svg draws from --csv: give both"))
		}
		if err := drawSVG(*csvPath, *svgPath); err != nil {
			return fail(err)
		}
	}
	return 0
}

// loopbackOnly refuses URLs whose host is not a loopback address: the load
// generator is for this machine only.
func loopbackOnly(u string) error {
	i := strings.Index(u, "://")
	if i < 0 {
		return fmt.Errorf("bad URL %q", u)
	}
	hostport := u[i+3:]
	if j := strings.IndexByte(hostport, '/'); j >= 0 {
		hostport = hostport[:j]
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%s: only loopback targets are allowed", u)
}

// raiseFileLimit lifts the open-file limit as far as allowed: thousands of
// boards and browsers are a socket each.
func raiseFileLimit(log *slog.Logger) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return
	}
	want := uint64(1 << 17)
	if l.Max < want {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: want, Max: want}); err == nil {
			return
		}
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		log.Warn("raise open-file limit", "err", err)
	}
}

func drawSVG(csvPath, svgPath string) error {
	rows, err := loadgen.ReadCSV(csvPath)
	if err != nil {
		return err
	}
	return writeFile(svgPath, "svg", func(w io.Writer) error { return loadgen.WriteSVG(w, rows) })
}

// writeToggleTrace writes res's toggles to path (a sweep's last run wins).
func writeToggleTrace(path string, res *loadgen.Result) error {
	return writeFile(path, "toggle trace", func(w io.Writer) error { return loadgen.WriteToggleTrace(w, res) })
}

// writeFile creates path and writes it with write; what names the file in
// errors.
func writeFile(path, what string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", what, err)
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", what, err)
	}
	return nil
}

// report prints the comparison of every workload in a CSV, best of repeats.
func report(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("loadgen report", flag.ContinueOnError)
	fl.SetOutput(stderr)
	csvPath := fl.String("csv", "", "CSV written by loadgen --csv")
	svgPath := fl.String("svg", "", "also draw latency against load into this SVG file")
	sweepLabel := fl.String("sweep-label", "sweep", "label of the knee sweep rows")
	kneeP99 := fl.Float64("knee-p99-ms", 100, "knee: the highest rate with p99 at most this and nothing lost")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	rows, err := loadgen.ReadCSV(*csvPath)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen report:", err)
		return 1
	}
	if err := loadgen.WriteComparison(stdout, rows); err != nil {
		fmt.Fprintln(stderr, "loadgen report:", err)
		return 1
	}
	if k := loadgen.Knee(rows, *sweepLabel, *kneeP99); len(k) > 0 {
		fmt.Fprintf(stdout, "knee (delivered events/s, p99 ≤ %g ms, nothing lost):", *kneeP99)
		for _, t := range []loadgen.Target{loadgen.Switchyard, loadgen.Mosquitto, loadgen.NodeRED} {
			if v, ok := k[t]; ok {
				fmt.Fprintf(stdout, "  %s %.0f", t, v)
			}
		}
		fmt.Fprintln(stdout)
	}
	if *svgPath != "" {
		if err := drawSVG(*csvPath, *svgPath); err != nil {
			fmt.Fprintln(stderr, "loadgen report:", err)
			return 1
		}
	}
	return 0
}

// rolloutBench runs the rollout benchmark against a running control plane
// and fleet (bench/rollout.sh starts both) and prints what it measured.
func rolloutBench(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("loadgen rollout", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var cfg loadgen.RolloutConfig
	fl.StringVar(&cfg.HTTP, "http", "http://127.0.0.1:8080", "control plane HTTP base URL")
	fl.StringVar(&cfg.Token, "token", "", "an admin's API token")
	fl.IntVar(&cfg.Boards, "boards", 1000, "simulated boards to wait for")
	fl.StringVar(&cfg.IDs, "ids", "sim", "id prefix of the boards (devicefw --id with --sim)")
	size := fl.String("size", "5MiB", "size of the random build (B, KiB, MiB)")
	fl.StringVar(&cfg.Platform, "platform", "sim", "the build's platform")
	fl.StringVar(&cfg.Waves, "waves", "1,10%,100%", "the rollout's waves")
	fl.DurationVar(&cfg.HealthWindow, "health-window", 5*time.Second, "the rollout's health_window")
	fl.IntVar(&cfg.MaxFailures, "max-failures", 0, "the rollout's max_failures")
	fl.IntVar(&cfg.Parallel, "parallel", 1000, "the rollout's parallel")
	fl.IntVar(&cfg.PID, "pid", 0, "the control plane's pid (CPU seconds, RSS)")
	fl.DurationVar(&cfg.Timeout, "timeout", 10*time.Minute, "give up after this")
	fl.StringVar(&cfg.BytesMetric, "bytes-metric", "switchyard_firmware_served_bytes_total", "the /metrics counter of firmware bytes served")
	label := fl.String("label", "rollout", "name of the run in the output")
	verbose := fl.Bool("v", false, "log progress")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	n, err := parseSize(*size)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen rollout: --size:", err)
		return 2
	}
	cfg.Size = n
	if *verbose {
		cfg.Log = func(format string, a ...any) { fmt.Fprintf(stderr, "loadgen: "+format+"\n", a...) }
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := loadgen.RunRollout(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen rollout:", err)
		return 1
	}
	mb := func(v float64) string { return strconv.FormatFloat(v/1e6, 'f', 1, 64) }
	fmt.Fprintf(stdout, "%s: %d boards, %s build: %s after %s; counts %v; %d boards sent a job\n",
		*label, res.Boards, *size, res.State, res.TimeToDone.Round(time.Millisecond), res.Counts, res.Sent)
	for i, w := range res.Waves {
		fmt.Fprintf(stdout, "  wave %d done at %s\n", i+1, w.Round(time.Millisecond))
	}
	fmt.Fprintf(stdout, "  control plane: %.2f CPU s, RSS idle (its peak over 10 s) %s MB, peak %s MB (+%s MB)\n",
		res.CPU.Seconds(), mb(float64(res.IdleRSS)), mb(float64(res.PeakRSS)), mb(float64(res.PeakRSS-res.IdleRSS)))
	fmt.Fprintf(stdout, "  firmware served: %s MB, best 1 s %s MB/s, mean while serving %s MB/s\n",
		mb(res.BytesServed), mb(res.PeakServed), mb(res.MeanServed))
	return 0
}

// fetchControl runs a rollout's downloads with no rollout behind them
// (bench/rollout.sh's run 4).
func fetchControl(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("loadgen fetch", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var cfg loadgen.FetchConfig
	fl.StringVar(&cfg.URL, "url", "", "the build's URL (empty: serve a random build from this process on 127.0.0.1:0)")
	fl.StringVar(&cfg.Token, "token", "", "a token for --url (Bearer)")
	fl.StringVar(&cfg.SHA256, "sha256", "", "the SHA-256 --url's build must have (empty: the first download's)")
	size := fl.String("size", "5MiB", "size of the random build without --url")
	waves := fl.String("waves", "1,100,899", "downloads per wave")
	starts := fl.String("starts", "0s,10.5s,21.4s", "each wave's start from the run's")
	fl.Float64Var(&cfg.Rate, "rate", 100, "downloads started per second")
	fl.IntVar(&cfg.Burst, "burst", 20, "downloads started at once")
	label := fl.String("label", "fetch", "name of the run in the output")
	verbose := fl.Bool("v", false, "log progress")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	bad := func(err error) int {
		fmt.Fprintln(stderr, "loadgen fetch:", err)
		return 2
	}
	n, err := parseSize(*size)
	if err != nil {
		return bad(fmt.Errorf("--size: %w", err))
	}
	cfg.Size = n
	for _, s := range strings.Split(*waves, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || v < 0 {
			return bad(fmt.Errorf("--waves: bad count %q", s))
		}
		cfg.Waves = append(cfg.Waves, v)
	}
	for _, s := range strings.Split(*starts, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d < 0 {
			return bad(fmt.Errorf("--starts: bad duration %q", s))
		}
		cfg.Starts = append(cfg.Starts, d)
	}
	if *verbose {
		cfg.Log = func(format string, a ...any) { fmt.Fprintf(stderr, "loadgen: "+format+"\n", a...) }
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := loadgen.RunFetch(ctx, cfg)
	if res != nil {
		fmt.Fprintf(stdout, "%s: %d downloads verified, %d failed, %.1f MB in %s, best 1 s %.1f MB/s\n",
			*label, res.Downloads, res.Failed, float64(res.Bytes)/1e6, res.Took.Round(time.Millisecond), res.PeakServed/1e6)
	}
	if err != nil {
		fmt.Fprintln(stderr, "loadgen fetch:", err)
		return 1
	}
	return 0
}

// parseSize reads 5MiB, 512KiB, 100B or a plain byte count.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q: want a positive size like 5MiB", s)
	}
	return n * mult, nil
}

// ports prints n free loopback TCP ports, one a line.
func ports(args []string, stdout, stderr io.Writer) int {
	n := 1
	if len(args) > 0 {
		v, err := strconv.Atoi(args[0])
		if err != nil || v < 1 || v > 100 {
			fmt.Fprintln(stderr, "loadgen ports: want a count from 1 to 100")
			return 2
		}
		n = v
	}
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(stderr, "loadgen ports:", err)
			return 1
		}
		lns = append(lns, l)
		fmt.Fprintln(stdout, l.Addr().(*net.TCPAddr).Port)
	}
	return 0
}

// startProfile creates path and starts start writing to it; the returned
// func stops it and closes the file.
func startProfile(path string, start func(io.Writer) error, stop func()) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := start(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { stop(); f.Close() }, nil
}
