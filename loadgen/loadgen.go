// Package loadgen is Switchyard's load generator: it plays B boards (each
// its own MQTT connection, publishing count at a fixed rate) and W browsers
// against a running control plane, or against a peer doing the same job
// (Mosquitto with browsers speaking MQTT over WebSocket, or a Node-RED
// flow), and measures what the browsers see: end-to-end latency from a
// board's publish to each browser's receipt, delivered events per second,
// events lost, browsers dropped, the toggle round-trip, and the CPU time and
// memory of the processes under test.
//
// A count payload is a decimal integer (the wire contract), so a board
// publishes base+seq, where base is fixed per run and seq counts its
// messages; the generator keeps each message's send time by (board, seq) and
// a browser's receipt of value base+seq is matched against it. Only messages
// sent inside the measurement window (after the warm-up) are counted, and
// after the boards stop every browser is given a bounded drain period to
// receive the rest: what has not arrived by then is lost.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"switchyard/devices"
)

// Target is the kind of system under test.
type Target string

// The systems the load generator can drive.
const (
	// Switchyard is the control plane: boards on its MQTT listener,
	// browsers on /ws receiving JSON events.
	Switchyard Target = "switchyard"
	// Mosquitto is a plain broker: browsers are MQTT-over-WebSocket
	// subscribers on P/#.
	Mosquitto Target = "mosquitto"
	// NodeRED is a Node-RED flow that speaks the /ws dialect.
	NodeRED Target = "nodered"
)

// ParseTarget returns the Target named s.
func ParseTarget(s string) (Target, error) {
	switch t := Target(strings.ToLower(s)); t {
	case Switchyard, Mosquitto, NodeRED:
		return t, nil
	}
	return "", fmt.Errorf("unknown target %q (want switchyard, mosquitto or nodered)", s)
}

// Config describes one run.
type Config struct {
	// Label names the workload in the outputs, e.g. "fleet".
	Label string
	// Target is the system under test; empty means Switchyard.
	Target Target
	// MQTT is the broker URL the boards connect to, e.g. tcp://127.0.0.1:1883.
	MQTT string
	// WS is the browsers' WebSocket URL: ws://host:port/ws for Switchyard
	// and Node-RED, the broker's websockets listener for Mosquitto.
	WS string
	// Prefix is the topic prefix; empty means "devices".
	Prefix string
	// Boards and Browsers are how many of each to play.
	Boards, Browsers int
	// Rate is each board's count rate, messages per second.
	Rate float64
	// Warmup runs the load before measuring; Duration is the measured window.
	Warmup, Duration time.Duration
	// Drain bounds how long after the boards stop the browsers may still
	// receive the window's events; 0 means 5 s.
	Drain time.Duration
	// ToggleEvery is the period of toggles during the window (one in flight
	// at a time); 0 means 250 ms, negative turns toggles off.
	ToggleEvery time.Duration
	// Idle connects the boards and browsers without any traffic and
	// measures memory per connection instead.
	Idle bool
	// PIDs are the processes under test, for CPU time and RSS (summed).
	PIDs []int
	// IDPrefix prefixes the board ids, "<IDPrefix>-<n>"; empty means "lg".
	IDPrefix string
	// Parallel bounds concurrent connection attempts; 0 means 64.
	Parallel int
	// Guess, when its N is set, hammers the logins with wrong passwords
	// from the start of the warm-up to the end of the window.
	Guess Guess
	// BoardsApart plays the boards in a process of their own
	// (BoardsCommand), so that the browsers' reading (in this process,
	// woken by every fan-out: a thousand goroutines with Readers
	// "goroutines") never delays a board's answer to a command: on their
	// own hardware boards do not wait for the browsers. Ignored with Idle.
	BoardsApart bool
	// BoardsCommand runs the boards' process; its arguments are appended
	// and it must call BoardsMain with them. Nil means this executable with
	// the argument "boards" (cmd/loadgen's).
	BoardsCommand []string
	// Readers is how the browsers are read: "goroutines" (the default:
	// one goroutine per browser, each with its gorilla/websocket
	// connection) or "epoll" (Linux: Pollers goroutines waiting in
	// epoll_wait, see pollReaders).
	Readers string
	// Pollers is how many goroutines read the browsers with Readers
	// "epoll"; 0 means 1. One reads a thousand browsers under (c) with the
	// fewest threads taken from the target's cores.
	Pollers int
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

// Result holds the figures of one run. Durations are zero when not measured.
type Result struct {
	Label    string
	Target   Target
	Boards   int
	Browsers int
	Rate     float64       // per board, messages/s
	Window   time.Duration // the measured window
	Idle     bool

	Published  int64   // count messages sent inside the window
	Expected   int64   // Published × browsers connected at the start
	Delivered  int64   // of those, received by a browser (each once)
	Lost       int64   // Expected - Delivered
	Duplicates int64   // repeated or out-of-order receipts
	Dropped    int     // browsers whose connection ended before the run did
	EventsPerS float64 // Delivered / Window
	// Latency is from a board's publish to each browser's socket receipt
	// (kernel receive timestamp); ReadLatency to when the load
	// generator's reader got to it, which adds its own scheduling delay.
	Latency     Histogram
	ReadLatency Histogram
	Toggles     int // toggles that every browser confirmed
	TogglesMax  int // toggles sent
	// ToggleLast is the toggle's round trip as a user watching the wall
	// sees it: from browser 0's send until the last of the live browsers
	// has the board's new LED state, at its socket (as Latency); one
	// sample per toggle. ReadToggleLast is the same until the last
	// browser's reader got it (as ReadLatency). A toggle not confirmed to
	// every browser within toggleWait counts as toggleWait (a lower bound).
	// With fewer than 100 toggles, their p99 is their maximum.
	ToggleLast     Histogram
	ReadToggleLast Histogram
	// ToggleEach is the same round trip to each browser's socket: one
	// sample per browser per toggle, so its p99 is not the p99 of
	// ToggleLast (a toggle whose slowest browser is at 30 ms has 990
	// receipts before it). ReadToggleEach is at each browser's reader.
	ToggleEach     Histogram
	ReadToggleEach Histogram
	// ToggleBoard is the toggle's first leg: from the browser's send to
	// the board's receipt of led/set; ToggleBoardRead is the first leg
	// to when the board's handler ran.
	ToggleBoard     Histogram
	ToggleBoardRead Histogram
	// ToggleFanOut is the toggle's last leg: from the board's write of its
	// new LED state to the last browser's socket receipt, one sample per
	// confirmed toggle. Between ToggleBoard and ToggleFanOut is the
	// simulated board's own delay (the load generator's scheduling).
	ToggleFanOut Histogram
	// ToggleTrace has one entry per toggle sent, in order: where its time
	// went (see WriteToggleTrace).
	ToggleTrace []ToggleSample
	ErrorEvts   int64 // error events the browsers received
	// Timeline has one entry per second of the window: the count events
	// published in it, how many of their receipts took over 10 ms and
	// the slowest (at the socket), to place a tail in time.
	Timeline []Second

	CPU     time.Duration // CPU of the processes under test during the window
	PeakRSS int64         // bytes, over the whole run

	IdleBoardBytes   float64 // RSS delta per idle board connection
	IdleBrowserBytes float64 // RSS delta per idle browser

	Guess *GuessResult // what the guessers got; nil: none ran
}

// run is the shared state of one Run.
type run struct {
	cfg    Config
	topics devices.Topics // of cfg.Prefix
	log    *slog.Logger
	base   int64 // count payload = base + seq
	boards []*board

	winStart, winEnd atomic.Int64 // unix ns; the window, fixed before publishing
	sh               *shared      // with the boards, in this process or the boards' (see BoardsApart)
	poll             *pollReaders // Config.Readers "epoll"; nil otherwise
	toggle           atomic.Pointer[toggleState]
	timeline         []second // one per second of the window, by send time
}

// second accumulates the count events sent in one second of the window.
type second struct {
	n, tail, slow, worst atomic.Int64 // receipts; those over tailAfter; over slowAfter; the largest, µs
}

// slowAfter is the latency a timeline's second counts as slow, and
// tailAfter one in the tail: about the live path's p99 on a quiet 2-core
// machine (3.0-3.1 ms in bench/rollout.sh's run 2), so the seconds that
// move a p99 show.
const (
	slowAfter = 10 * time.Millisecond
	tailAfter = 3 * time.Millisecond
)

// record adds one receipt of an event sent at sent (unix ns) after d.
func (r *run) record(sent int64, d time.Duration) {
	i := (sent - r.winStart.Load()) / int64(time.Second)
	if i < 0 || i >= int64(len(r.timeline)) {
		return
	}
	s := &r.timeline[i]
	s.n.Add(1)
	if d > tailAfter {
		s.tail.Add(1)
	}
	if d > slowAfter {
		s.slow.Add(1)
	}
	us := d.Microseconds()
	for w := s.worst.Load(); us > w && !s.worst.CompareAndSwap(w, us); w = s.worst.Load() {
	}
}

// Second is one second of a run's window (see Result.Timeline).
type Second struct {
	Start time.Time
	N     int64         // receipts of the events published in it
	Tail  int64         // of those, over 3 ms
	Slow  int64         // of those, over 10 ms
	Worst time.Duration // the slowest receipt
}

// countBase returns a payload base that differs between runs started at
// least a second apart and keeps base+seq below 2^53, so JavaScript peers
// carry it exactly.
func countBase(now time.Time) int64 {
	return (now.Unix() % 100_000) * 10_000_000_000
}

func (cfg *Config) defaults() error {
	if cfg.Target == "" {
		cfg.Target = Switchyard
	}
	if cfg.IDPrefix == "" {
		cfg.IDPrefix = "lg"
	}
	if cfg.Drain <= 0 {
		cfg.Drain = 5 * time.Second
	}
	if cfg.ToggleEvery == 0 {
		cfg.ToggleEvery = 250 * time.Millisecond
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.Boards < 0 || cfg.Browsers < 0:
		return errors.New("boards and browsers must not be negative")
	case !cfg.Idle && cfg.Boards == 0:
		return errors.New("a load run needs at least one board")
	case !cfg.Idle && (cfg.Rate <= 0 || cfg.Duration <= 0):
		return errors.New("a load run needs a positive rate and duration")
	case cfg.MQTT == "":
		return errors.New("no MQTT URL")
	case cfg.Browsers > 0 && cfg.WS == "":
		return errors.New("no WebSocket URL for the browsers")
	}
	return nil
}

// Run performs one run and returns its figures. It connects everything,
// runs the load (or, with cfg.Idle, measures idle memory), and closes every
// connection it opened before returning.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	topics, err := devices.NewTopics(cfg.Prefix)
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	// The timeline is made before any browser starts: with BoardsApart no
	// atomic of this process orders a browser's receipt after the start.
	r := &run{cfg: cfg, topics: topics, log: cfg.Logger, base: countBase(time.Now()),
		timeline: make([]second, int(cfg.Duration.Seconds()+0.999))}
	res := &Result{Label: cfg.Label, Target: cfg.Target, Boards: cfg.Boards, Browsers: cfg.Browsers,
		Rate: cfg.Rate, Window: cfg.Duration, Idle: cfg.Idle}
	if cfg.Idle {
		res.Rate, res.Window = 0, 0
	}
	smp := startSampler(cfg.PIDs)
	base, err := settle(ctx, smp)
	if err != nil {
		smp.finish()
		return nil, fmt.Errorf("loadgen: sample processes: %w", err)
	}

	// Size each board's send-time table for every message it may send.
	perBoard := 0
	if !cfg.Idle {
		perBoard = int(cfg.Rate*(cfg.Warmup+cfg.Duration).Seconds()) + 16
	}
	start := time.Now()
	var apart *boardsProc
	if cfg.BoardsApart && !cfg.Idle {
		if apart, err = startBoardsProc(ctx, &cfg, r.base, perBoard); err != nil {
			return nil, fmt.Errorf("loadgen: %w", err)
		}
		defer apart.close()
		r.sh = apart.sh
	} else {
		r.sh = newShared(make([]atomic.Int64, sharedLen(cfg.Boards, perBoard)), cfg.Boards, perBoard)
	}
	r.makeBoards()
	defer r.disconnectBoards()
	if apart == nil {
		if err := r.connectBoards(ctx); err != nil {
			return nil, fmt.Errorf("loadgen: %w", err)
		}
	}
	r.log.Info("boards connected", "n", cfg.Boards, "took", time.Since(start).Round(time.Millisecond))

	var afterBoards procStat
	if cfg.Idle {
		if afterBoards, err = settle(ctx, smp); err != nil {
			return nil, fmt.Errorf("loadgen: sample processes: %w", err)
		}
		if cfg.Boards > 0 {
			res.IdleBoardBytes = float64(afterBoards.rss-base.rss) / float64(cfg.Boards)
		}
	}

	browsers := make([]*browser, cfg.Browsers)
	for i := range browsers {
		browsers[i] = newBrowser(r, i, !cfg.Idle)
	}
	switch cfg.Readers {
	case "", "goroutines":
	case "epoll":
		if r.poll, err = newPollReaders(max(cfg.Pollers, 1), len(browsers)); err != nil {
			return nil, fmt.Errorf("loadgen: %w", err)
		}
	default:
		return nil, fmt.Errorf("loadgen: readers %q: want goroutines or epoll", cfg.Readers)
	}
	var readers sync.WaitGroup
	defer func() {
		for _, b := range browsers {
			b.shutdown()
		}
		readers.Wait()
		if r.poll != nil {
			r.poll.close()
		}
	}()
	start = time.Now()
	if err := parallel(ctx, cfg.Parallel, len(browsers), func(i int) error {
		return browsers[i].connect(&readers)
	}); err != nil {
		return nil, fmt.Errorf("loadgen: connect browsers: %w", err)
	}
	r.log.Info("browsers connected", "n", cfg.Browsers, "took", time.Since(start).Round(time.Millisecond))

	if cfg.Idle {
		after, err := settle(ctx, smp)
		if err != nil {
			return nil, fmt.Errorf("loadgen: sample processes: %w", err)
		}
		if cfg.Browsers > 0 {
			res.IdleBrowserBytes = float64(after.rss-afterBoards.rss) / float64(cfg.Browsers)
		}
		for _, b := range browsers {
			if b.ended() {
				res.Dropped++
			}
		}
		res.PeakRSS, _ = smp.finish()
		return res, nil
	}

	// The load: warm-up, window, drain.
	t0 := time.Now()
	ws, we := t0.Add(cfg.Warmup), t0.Add(cfg.Warmup+cfg.Duration)
	r.winStart.Store(ws.UnixNano())
	r.winEnd.Store(we.UnixNano())
	runCtx, cancel := context.WithDeadline(ctx, we)
	defer cancel()
	var gs *guessers
	if cfg.Guess.N > 0 {
		if gs, err = startGuessers(runCtx, cfg.Guess, ws, we); err != nil {
			return nil, fmt.Errorf("loadgen: %w", err)
		}
	}
	var pubs sync.WaitGroup
	if apart != nil {
		if err := apart.start(t0, ws, we); err != nil {
			return nil, fmt.Errorf("loadgen: boards apart: start: %w", err)
		}
		pubs.Add(1)
		go func() { // ends when the boards' process says done or ends
			defer pubs.Done()
			if err := apart.expect("done"); err != nil {
				r.log.Warn("boards apart", "err", err)
			}
		}()
	} else {
		r.startPublishing(runCtx, t0, &pubs)
	}
	var cpuStart procStat
	select {
	case <-time.After(time.Until(ws)):
	case <-ctx.Done():
	}
	if cpuStart, err = smp.sample(); err != nil {
		cancel()
		pubs.Wait()
		return nil, fmt.Errorf("loadgen: sample processes: %w", err)
	}
	live := 0
	for _, b := range browsers {
		if !b.ended() {
			live++
		}
	}
	var tg sync.WaitGroup
	if cfg.ToggleEvery > 0 && len(browsers) > 0 {
		tg.Add(1)
		go r.toggler(runCtx, browsers, res, &tg) // ends at the window's end
	}
	pubs.Wait()
	tg.Wait()
	if gs != nil {
		g := gs.wait()
		res.Guess = &g
	}
	cpuEnd, err := smp.sample()
	if err != nil {
		return nil, fmt.Errorf("loadgen: sample processes: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	res.CPU = cpuEnd.cpu - cpuStart.cpu
	res.Published = r.sh.published.Load()
	res.Expected = res.Published * int64(live)

	// Drain: wait until every browser has every window event, or the
	// deadline; what is missing then is lost.
	drainEnd := time.Now().Add(cfg.Drain)
	tick := time.NewTicker(10 * time.Millisecond)
	for time.Now().Before(drainEnd) {
		var got int64
		for _, b := range browsers {
			got += b.received.Load()
		}
		if got >= res.Expected {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	tick.Stop()
	for _, b := range browsers {
		b.shutdown()
	}
	readers.Wait()
	for _, b := range browsers {
		res.Delivered += b.received.Load()
		res.Duplicates += b.dups
		res.ErrorEvts += b.errorEvts
		res.Latency.Merge(&b.lat)
		res.ToggleEach.Merge(&b.tog)
		res.ReadLatency.Merge(&b.readLat)
		res.ReadToggleEach.Merge(&b.readTog)
		if b.dropped.Load() {
			res.Dropped++
		}
	}
	for i := range r.timeline {
		t := &r.timeline[i]
		res.Timeline = append(res.Timeline, Second{Start: ws.Add(time.Duration(i) * time.Second),
			N: t.n.Load(), Tail: t.tail.Load(), Slow: t.slow.Load(), Worst: time.Duration(t.worst.Load()) * time.Microsecond})
	}
	res.Lost = max(res.Expected-res.Delivered, 0)
	res.EventsPerS = float64(res.Delivered) / cfg.Duration.Seconds()
	res.PeakRSS, err = smp.finish()
	if err != nil {
		return res, fmt.Errorf("loadgen: sample processes: %w", err)
	}
	return res, nil
}

// settle waits until the RSS of the processes under test stops moving (less
// than 0.25 % in a second, at most 30 s: the Go runtime hands freed memory
// back to the system over seconds) and returns the last sample.
func settle(ctx context.Context, smp *sampler) (procStat, error) {
	if len(smp.pids) == 0 {
		return procStat{}, nil
	}
	prev, err := smp.sample()
	if err != nil {
		return prev, err
	}
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return prev, ctx.Err()
		}
		cur, err := smp.sample()
		if err != nil {
			return cur, err
		}
		d := cur.rss - prev.rss
		prev = cur
		if d < 0 {
			d = -d
		}
		if d*400 < cur.rss {
			break
		}
	}
	return prev, nil
}

// parallel runs fn(0..n-1) with at most p at a time and returns the first
// error.
func parallel(ctx context.Context, p, n int, fn func(int) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := atomic.Int64{}
	for range min(p, n) {
		wg.Add(1)
		go func() { // ends when every index is taken or one failed
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					next.Store(int64(n)) // stop the others
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// boardIndex returns n for the id "<prefix>-<n>".
func (r *run) boardIndex(id []byte) int {
	p := r.cfg.IDPrefix
	if len(id) <= len(p)+1 || string(id[:len(p)]) != p || id[len(p)] != '-' {
		return -1
	}
	n, err := strconv.Atoi(string(id[len(p)+1:]))
	if err != nil || n < 0 || n >= len(r.boards) {
		return -1
	}
	return n
}

// toggleWait bounds the wait for a toggle's confirmation by every browser.
const toggleWait = 2 * time.Second

// toggleState is the toggle in flight: every browser must see board's LED
// reach want.
type toggleState struct {
	seq        int64
	board      int
	want       bool
	sent       time.Time // wall clock only
	remaining  atomic.Int64
	lastAt     atomic.Int64 // unix ns: the latest socket receipt of a confirmation
	lastReadAt atomic.Int64 // unix ns: the latest reader's receipt of a confirmation
	// Unix ns, from run.sh when the toggle is recorded (0: not seen): the
	// board's socket receipt of led/set, when its handler ran, when it
	// wrote its new LED state.
	boardAt, boardRead, ledOut int64
	rxMu                       sync.Mutex // guards rx
	rx                         []toggleRx // each browser's confirmation, by browser index; nil: not traced
	done                       chan struct{}
	once                       sync.Once
}

// toggleRx is one browser's confirmation of a toggle.
type toggleRx struct {
	at, read int64 // unix ns: socket receipt, reader
	prev     int64 // unix ns: socket receipt of the browser's previous frame; 0 none
	counts   int   // count events in the frame that carried it
}

// confirm counts one browser's confirmation, received at its socket at at
// and read at read.
func (t *toggleState) confirm(at, read time.Time) {
	storeMax(&t.lastAt, at.UnixNano())
	storeMax(&t.lastReadAt, read.UnixNano())
	if t.remaining.Add(-1) == 0 {
		t.once.Do(func() { close(t.done) })
	}
}

// storeMax raises v to ns unless it already holds more.
func storeMax(v *atomic.Int64, ns int64) {
	for {
		old := v.Load()
		if ns <= old || v.CompareAndSwap(old, ns) {
			return
		}
	}
}

// record adds the toggle's round trip to the last browser to res: at its
// socket and at its reader, or toggleWait for both when not every browser
// confirmed it (confirmed false).
func (t *toggleState) record(res *Result, sh *shared, confirmed bool) {
	t.boardAt, t.boardRead, t.ledOut = sh.boardAt.Load(), sh.boardRead.Load(), sh.ledOut.Load()
	sh.toggled.Store(0)
	if t.boardAt != 0 && t.boardRead != 0 { // both, or a handler caught between the two stores
		res.ToggleBoard.Record(time.Unix(0, t.boardAt).Sub(t.sent))
		res.ToggleBoardRead.Record(time.Unix(0, t.boardRead).Sub(t.sent))
	}
	if t.rx != nil {
		res.ToggleTrace = append(res.ToggleTrace, t.sample(confirmed))
	}
	if !confirmed {
		res.ToggleLast.Record(toggleWait)
		res.ReadToggleLast.Record(toggleWait)
		return
	}
	res.Toggles++
	if out := t.ledOut; out != 0 {
		res.ToggleFanOut.Record(time.Duration(t.lastAt.Load() - out))
	}
	res.ToggleLast.Record(time.Unix(0, t.lastAt.Load()).Sub(t.sent))
	res.ReadToggleLast.Record(time.Unix(0, t.lastReadAt.Load()).Sub(t.sent))
}

// ToggleSample is one toggle, traced: durations are from its send, receipts
// at the socket unless named otherwise.
type ToggleSample struct {
	Seq       int64
	Sent      time.Time // browser 0 sent it
	Board     int
	Confirmed bool          // by every browser
	ToBoard   time.Duration // the board got led/set; 0 unknown
	LEDOut    time.Duration // the board wrote its new LED state; 0 unknown
	// First, Median, Near (the 99th percentile: the tenth last of 1,000)
	// and Last are the browsers' receipts; LastRead is the latest
	// reader's. Last far beyond Near is one browser held up, not a slow
	// round.
	First, Median, Near, Last, LastRead time.Duration
	// LastBrowser is the index of the browser with the latest receipt;
	// LastCounts the count events in the frame that brought it there,
	// and LastGap the time since that browser's previous frame (-1: none).
	LastBrowser int
	LastCounts  int
	LastGap     time.Duration
	// WithCounts is how many browsers got it in a frame that also
	// carried counts, of Confirmers.
	WithCounts, Confirmers int
}

// traceRx records browser i's confirmation.
func (t *toggleState) traceRx(i int, rx toggleRx) {
	t.rxMu.Lock()
	if i < len(t.rx) {
		t.rx[i] = rx
	}
	t.rxMu.Unlock()
}

// sample summarises the confirmations received so far.
func (t *toggleState) sample(confirmed bool) ToggleSample {
	t.rxMu.Lock()
	defer t.rxMu.Unlock()
	s := ToggleSample{Seq: t.seq, Sent: t.sent, Board: t.board, Confirmed: confirmed, LastBrowser: -1, LastGap: -1}
	if ns := t.boardAt; ns != 0 {
		s.ToBoard = time.Unix(0, ns).Sub(t.sent)
	}
	if ns := t.ledOut; ns != 0 {
		s.LEDOut = time.Unix(0, ns).Sub(t.sent)
	}
	var ats []int64
	var last, lastRead int64
	for i, rx := range t.rx {
		if rx.at == 0 {
			continue
		}
		ats = append(ats, rx.at)
		if rx.counts > 0 {
			s.WithCounts++
		}
		lastRead = max(lastRead, rx.read)
		if rx.at > last {
			last, s.LastBrowser, s.LastCounts = rx.at, i, rx.counts
			if rx.prev != 0 {
				s.LastGap = time.Duration(rx.at - rx.prev)
			} else {
				s.LastGap = -1
			}
		}
	}
	s.Confirmers = len(ats)
	if len(ats) == 0 {
		return s
	}
	slices.Sort(ats)
	since := func(ns int64) time.Duration { return time.Unix(0, ns).Sub(t.sent) }
	near := ats[max((len(ats)*99+99)/100-1, 0)]
	s.First, s.Median, s.Near, s.Last, s.LastRead = since(ats[0]), since(ats[len(ats)/2]), since(near), since(last), since(lastRead)
	return s
}

// toggler sends one toggle at a time from browser 0 to the boards in turn,
// each waiting until every live browser saw the board's confirmation (or
// toggleWait), during the window.
func (r *run) toggler(ctx context.Context, browsers []*browser, res *Result, wg *sync.WaitGroup) {
	defer wg.Done()
	tick := time.NewTicker(r.cfg.ToggleEvery)
	defer tick.Stop()
	for seq := int64(1); ; seq++ {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		b := r.boards[int(seq)%len(r.boards)]
		from := browsers[0]
		if from.ended() {
			return
		}
		t := &toggleState{seq: seq, board: b.idx, want: r.sh.led(b.idx).Load() == 0, rx: make([]toggleRx, len(browsers)), done: make(chan struct{})}
		live := int64(0)
		for _, br := range browsers {
			if !br.ended() {
				live++
			}
		}
		t.remaining.Store(live)
		r.sh.startToggle(b.idx)
		// Wall clock only (Round(0) drops the monotonic reading): every
		// figure of a toggle is then a difference of wall clocks, as the
		// receipts' (kernel timestamps, unix ns) are; a monotonic one
		// differs from them by the clock's slewing, a microsecond or so,
		// which made "the last receipt is the slowest" fail.
		t.sent = time.Now().Round(0)
		r.toggle.Store(t)
		res.TogglesMax++
		if err := from.sendToggle(b.id); err != nil {
			r.log.Warn("toggle", "err", err)
			r.toggle.Store(nil)
			r.sh.toggled.Store(0)
			return
		}
		// Not cut short at the window's end: browsers are already
		// recording this toggle's receipts, so it is seen through
		// (toggleWait at most) and counted either way.
		select {
		case <-t.done:
			t.record(res, r.sh, true)
		case <-time.After(toggleWait):
			t.record(res, r.sh, false)
			r.log.Warn("toggle not confirmed to every browser in time", "board", b.id, "waited", toggleWait, "missing", t.remaining.Load())
		}
		r.toggle.Store(nil)
	}
}
