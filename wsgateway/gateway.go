// Package wsgateway serves browsers: the dashboard, the WebSocket endpoints
// /ws and /ws/<id>, the REST API, /healthz and /metrics.
//
// Board messages arrive through Ingest (from the broker's inline
// subscription, on the publishing client's goroutine); Ingest only queues
// them. One loop goroutine applies them to the fleet state and fans the
// resulting events out to every browser: each batch of events is encoded
// once and handed to every browser's bounded queue as one shared chunk, so
// fan-out costs one append per browser per batch. Each browser has one
// reader goroutine (reader.go: frames are parsed here, gorilla/websocket
// only does the handshake). Writing is a role a browser's writer holds
// while it has something to send: a turn of a pool worker (one per CPU,
// non-blocking writes) or, when its socket is full or the round is large,
// a goroutine of its own until it has caught up (writer.go); either way
// everything queued goes out as one frame (a JSON array). A browser whose
// queue overflows is dropped and never slows the others, the loop or the
// broker.
//
// Lock order: Gateway.mu, then client.mu, then readyQueue.mu. Gateway.inMu
// is taken alone.
package wsgateway

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"switchyard/devices"
)

// Bus is what the gateway needs of the MQTT side.
type Bus interface {
	// Publish publishes a message as the control plane.
	Publish(topic string, payload []byte, retain bool, qos byte) error
	// ClearRetained clears every retained message matching filter.
	ClearRetained(filter string) (int, error)
}

// Config configures a Gateway. Zero values mean the documented defaults.
type Config struct {
	// Topics is the topic layout; the zero value means prefix "devices".
	Topics devices.Topics
	// Declared devices are known (offline) before they first publish.
	Declared []devices.Declared
	// AllowedOrigins are browser origins allowed besides the control
	// plane's own; "*" allows any.
	AllowedOrigins []string
	// MaxDevices bounds the known devices; 0 means unlimited.
	MaxDevices int
	// QueueBytes bounds what may wait for a slow browser beyond its
	// connect snapshot; 0 means 1 MiB. A browser past it is dropped.
	QueueBytes int
	// PingInterval is how often the server pings each browser; 0 means 25s.
	PingInterval time.Duration
	// PongWait is how long a browser may stay silent (no pong, no message)
	// before it is dropped; 0 means 60s.
	PongWait time.Duration
	// WriteWait bounds one frame write; 0 means 10s.
	WriteWait time.Duration
	// Auth identifies browsers and API clients; nil lets everybody in as
	// admin (tests and trusted setups only).
	Auth Authenticator
	// SessionKey signs session cookies; empty means a random key (sessions
	// then end when the process does).
	SessionKey []byte
	// SessionTTL is how long a login lasts; 0 means 168h.
	SessionTTL time.Duration
	// RevokedSessions, when set, keeps logged-out sessions across
	// restarts (use it with a SessionKey that outlives the process); nil
	// keeps them in memory.
	RevokedSessions RevokedSessions
	// SecureCookies marks session cookies Secure (set when serving HTTPS).
	SecureCookies bool
	// Metrics says who may read /metrics; the zero value is public.
	Metrics MetricsAccess
	// MaxBrowsers bounds WebSocket connections; 0 means unlimited.
	MaxBrowsers int
	// CommandRate is how many commands a second one browser may send, with
	// bursts of CommandBurst; 0 means 10 and 20.
	CommandRate  float64
	CommandBurst int
	// CommandTimeout is how long a command may wait for the board's
	// confirmation before it is reported timed out; 0 means 5s.
	CommandTimeout time.Duration
	// Groups name sets of boards that can be switched at once ("all" is
	// every known board and needs no entry).
	Groups map[string][]string
	// Observer, when set, hears when a board becomes known, changes its
	// info, or is forgotten (Home Assistant discovery uses it).
	Observer Observer
	// Health reports whether the MQTT side is serving; nil means it is.
	Health func() error
	// MQTTClients, when set, is exported as a metric.
	MQTTClients func() int64
	// CoalescePerBrowser and CoalesceMax bound how long counts may wait to
	// share a frame: CoalescePerBrowser per connected browser, at most
	// CoalesceMax, after the last fan-out (see countGap); 0 means 20µs and
	// 25ms.
	CoalescePerBrowser time.Duration
	CoalesceMax        time.Duration
	// Logger receives the gateway's logs; nil discards them.
	Logger *slog.Logger
}

// Observer hears about the fleet. Its methods run on the gateway's loop
// goroutine and must not block.
type Observer interface {
	DeviceChanged(d devices.Device)
	DeviceRemoved(id string)
}

// maxIngest bounds queued board messages; beyond it count messages (the
// next one supersedes them) are dropped, state messages never.
const maxIngest = 1 << 17

// inMsg is a queued board message, or an operation to run on the loop.
type inMsg struct {
	topic   string
	id      string       // parsed from topic by Ingest
	kind    devices.Kind // parsed from topic by Ingest
	payload []byte
	at      time.Time
	op      func()         // when set, run under mu in order with the messages
	ev      *devices.Event // when set, an event to broadcast in order with the messages' (see postEvent)
	bad     error          // when set, a board topic with an invalid id: logged and counted, nothing else
}

// Gateway connects browsers to the fleet. Create it with New, serve
// Handler, feed it with Ingest and stop it with Close.
type Gateway struct {
	cfg    Config
	topics devices.Topics
	bus    Bus
	log    *slog.Logger
	m      *metrics
	static http.Handler
	upg    *websocket.Upgrader // built once: shares the write buffer pool

	mu      sync.RWMutex // guards fleet, clients, single, closed, snap*
	fleet   *devices.Fleet
	snap    []byte                          // the /ws connect snapshot, encoded once while the fleet is unchanged
	snapN   int                             // events in snap
	snapOK  bool                            // snap matches the fleet
	clients map[*client]struct{}            // /ws browsers
	single  map[string]map[*client]struct{} // /ws/<id> browsers by id
	closed  bool

	inMu        sync.Mutex // guards inQ, inUrgent
	inQ         []inMsg
	inUrgent    bool          // inQ holds something other than a count: no coalescing wait
	inNotBefore time.Time     // non-zero: a posted event waits until then (see postEvent)
	nBrowser    atomic.Int64  // connected browsers (/ws and /ws/<id>), for the coalescing gap
	inKick      chan struct{} // cap 1: inQ is not empty
	stop        chan struct{} // closed by Close
	loopWG      sync.WaitGroup
	connsWG     sync.WaitGroup // client readers and writer roles (client.startWriter to release)
	ready       readyQueue     // browsers waiting for a pool worker (writer.go)
	workersWG   sync.WaitGroup // pool workers

	badLog   rateLog
	sessions *sessions
	cmds     *tracker

	closeOnce sync.Once
}

// New returns a gateway that publishes commands on bus. It starts the loop
// goroutine; Close stops it.
func New(cfg Config, bus Bus) (*Gateway, error) {
	if cfg.Topics.Prefix() == "" {
		cfg.Topics = devices.MustTopics(devices.DefaultPrefix)
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = 1 << 20
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 25 * time.Second
	}
	if cfg.PongWait <= 0 {
		cfg.PongWait = 60 * time.Second
	}
	if cfg.WriteWait <= 0 {
		cfg.WriteWait = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CoalescePerBrowser <= 0 {
		cfg.CoalescePerBrowser = 20 * time.Microsecond
	}
	if cfg.CoalesceMax <= 0 {
		cfg.CoalesceMax = 25 * time.Millisecond
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 168 * time.Hour
	}
	if cfg.CommandRate <= 0 {
		cfg.CommandRate = 10
	}
	if cfg.CommandBurst <= 0 {
		cfg.CommandBurst = 20
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = 5 * time.Second
	}
	if len(cfg.SessionKey) == 0 {
		cfg.SessionKey = make([]byte, 32)
		if _, err := rand.Read(cfg.SessionKey); err != nil {
			return nil, fmt.Errorf("gateway: session key: %w", err)
		}
	}
	sess, err := newSessions(cfg.SessionKey, cfg.SessionTTL, cfg.RevokedSessions)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	fleet, err := devices.NewFleet(cfg.Declared, cfg.MaxDevices)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	static, err := staticHandler()
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g := &Gateway{
		cfg:      cfg,
		topics:   cfg.Topics,
		bus:      bus,
		log:      cfg.Logger,
		static:   static,
		upg:      newUpgrader(cfg.AllowedOrigins),
		fleet:    fleet,
		clients:  map[*client]struct{}{},
		single:   map[string]map[*client]struct{}{},
		inKick:   make(chan struct{}, 1),
		stop:     make(chan struct{}),
		sessions: sess,
		cmds:     newTracker(cfg.CommandTimeout),
	}
	g.m = newMetrics(g)
	g.m.setFleet(fleet.Len(), fleet.OnlineCount()) // declared devices are known from the start
	g.loopWG.Add(2)
	g.startWorkers()
	go g.loop()   // ends when Close closes g.stop
	go g.pinger() // ends when Close closes g.stop
	return g, nil
}

// Ingest queues a message a board published. It copies payload, never
// blocks and is safe for concurrent use: call it from the broker's inline
// subscription.
func (g *Gateway) Ingest(topic string, payload []byte, at time.Time) {
	id, k, ok := g.topics.Parse(topic)
	var bad error
	if !ok {
		// A board's topic with an invalid id is ignored too, but with a
		// clear error (logged by the loop: nothing here may block).
		if bad = g.topics.CheckID(topic); bad == nil {
			return // not a board topic of this prefix: nothing to apply
		}
	}
	droppable := k == devices.KindCount || bad != nil // the next count supersedes it; no hurry
	g.inMu.Lock()
	if droppable && len(g.inQ) >= maxIngest {
		g.inMu.Unlock()
		g.m.ingestDropped.Inc()
		return
	}
	if bad != nil {
		g.inQ = append(g.inQ, inMsg{topic: topic, bad: bad})
	} else {
		g.inQ = append(g.inQ, inMsg{topic: topic, id: id, kind: k, payload: append([]byte(nil), payload...), at: at})
	}
	if !droppable {
		g.inUrgent = true
	}
	g.inMu.Unlock()
	g.kick()
}

// Coalescing of counts. Every fan-out costs one frame write (a system
// call, 5-30 µs on loopback) per browser, whatever it carries, so with
// many browsers the write calls, not the events, bound the gateway: 1,000
// browsers and 100 boards counting at 1 Hz are 100,000 writes a second,
// a full core. So when only counts are waiting, the loop waits until
// Config.CoalescePerBrowser × browsers (at most Config.CoalesceMax) has
// passed since its last fan-out and sends them together: a few events per
// frame, a fraction of the writes (bench/README.md has the figures).
// Anything else (state, status, info, an operation) goes out at once, with
// the counts queued before it. A quiet gateway, or one with few browsers,
// adds no delay: the gap is 0.1 ms for 5 browsers, 2 ms for 100, 20 ms for
// 1,000.
// countGap returns how long after a fan-out counts alone wait.
func (g *Gateway) countGap() time.Duration {
	return min(g.cfg.CoalesceMax, time.Duration(g.nBrowser.Load())*g.cfg.CoalescePerBrowser)
}

func (g *Gateway) kick() {
	select {
	case g.inKick <- struct{}{}:
	default:
	}
}

// runOnLoop runs op on the loop goroutine, under mu, after every message
// queued before it, and waits for it.
func (g *Gateway) runOnLoop(op func()) error {
	done := make(chan struct{})
	g.inMu.Lock()
	g.inQ = append(g.inQ, inMsg{op: func() { op(); close(done) }})
	g.inUrgent = true
	g.inMu.Unlock()
	g.kick()
	select {
	case <-done:
		return nil
	case <-g.stop:
		return errClosed
	}
}

// loop is the only goroutine that changes the fleet.
func (g *Gateway) loop() {
	defer g.loopWG.Done()
	var batch []inMsg
	var evs []devices.Event
	tick := time.NewTicker(250 * time.Millisecond) // command timeouts
	defer tick.Stop()
	hold := time.NewTimer(time.Hour) // counts waiting for the gap (see countGap)
	hold.Stop()
	var last time.Time // of the last fan-out of board messages
	for {
		select {
		case <-g.inKick:
		case <-hold.C:
		case now := <-tick.C:
			if evs = g.cmds.expire(now, evs[:0]); len(evs) > 0 {
				g.mu.Lock()
				g.fanOut(evs)
				g.mu.Unlock()
			}
			continue
		case <-g.stop:
			return
		}
		now := time.Now()
		g.inMu.Lock()
		if !g.inUrgent && len(g.inQ) > 0 {
			due := last.Add(g.countGap())
			if g.inNotBefore.After(due) {
				due = g.inNotBefore
			}
			if wait := due.Sub(now); wait > 0 {
				g.inMu.Unlock()
				hold.Reset(wait) // the same due time, however many kicks come first
				continue
			}
		}
		batch, g.inQ = g.inQ, batch[:0]
		g.inUrgent, g.inNotBefore = false, time.Time{}
		g.inMu.Unlock()
		hold.Stop()
		if len(batch) > 0 {
			last = now
		}

		g.mu.Lock()
		evs = evs[:0]
		for i := range batch {
			m := &batch[i]
			if m.ev != nil {
				evs = append(evs, *m.ev)
				continue
			}
			if m.op != nil {
				g.fanOut(evs) // keep order: events before the op go first
				evs = evs[:0]
				m.op()
				continue
			}
			if m.bad != nil {
				g.m.ignored.Inc()
				g.badLog.log(g.log, "ignored a board message", "topic", m.topic, "err", m.bad)
				continue
			}
			id, k := m.id, m.kind
			wasKnown := g.fleet.Known(id)
			var err error
			evs, err = g.fleet.Apply(id, k, m.payload, m.at, evs)
			if err != nil {
				g.m.ignored.Inc()
				g.badLog.log(g.log, "ignored a board message", "topic", m.topic, "err", err)
				continue
			}
			if k == devices.KindLED {
				evs = g.cmds.confirm(id, m.at, evs)
			}
			if obs := g.cfg.Observer; obs != nil && (!wasKnown || k == devices.KindInfo) {
				if d, ok := g.fleet.Get(id); ok {
					obs.DeviceChanged(d)
				}
			}
		}
		g.fanOut(evs)
		g.m.setFleet(g.fleet.Len(), g.fleet.OnlineCount())
		g.mu.Unlock()
		clear(batch) // drop payload references
	}
}

// pinger pings every browser each PingInterval, from one ticker for all
// (an idle browser has no goroutine of its own to do it).
func (g *Gateway) pinger() {
	defer g.loopWG.Done()
	t := time.NewTicker(g.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-g.stop:
			return
		}
		g.mu.RLock()
		g.eachBrowser((*client).ping)
		g.mu.RUnlock()
	}
}

// fanOut sends evs to every browser. Caller holds mu.
func (g *Gateway) fanOut(evs []devices.Event) {
	if len(evs) == 0 {
		return
	}
	g.snapOK = false // every event changes the fleet (command events too: harmless)
	g.m.broadcast.Add(float64(len(evs)))
	if len(g.clients) > 0 {
		var chunk []byte
		for i, ev := range evs {
			if i > 0 {
				chunk = append(chunk, ',')
			}
			chunk = ev.AppendJSON(chunk)
		}
		for c := range g.clients {
			c.enqueue(chunk, len(evs))
		}
	}
	if len(g.single) > 0 {
		for _, ev := range evs {
			subs := g.single[ev.Device]
			if len(subs) == 0 || !ev.SingleBoard() {
				continue
			}
			frame := ev.AppendSingle(nil)
			for c := range subs {
				c.enqueue(frame, 1)
			}
		}
	}
	for _, ev := range evs {
		if ev.Label != devices.LabelRemoved {
			continue
		}
		if obs := g.cfg.Observer; obs != nil {
			obs.DeviceRemoved(ev.Device)
		}
		for c := range g.single[ev.Device] {
			c.close(websocketGoingAway, "device removed", true)
		}
	}
}

// Errors of a command.
var (
	errUnknownDevice = errors.New("unknown device")
	errOffline       = errors.New("device is offline")
	errForbidden     = errors.New("forbidden")
	errRateLimited   = errors.New("too many commands")
	errClosed        = errors.New("gateway closed")
)

// command publishes cmd to the board id after checking the board is known
// and online, and tracks it until the board confirms. A command to an
// offline board is tracked as offline and not published.
func (g *Gateway) command(id string, cmd devices.Command) (command, error) {
	g.mu.RLock()
	d, ok := g.fleet.Get(id)
	closed := g.closed
	g.mu.RUnlock()
	switch {
	case closed:
		return command{}, errClosed
	case !ok:
		return command{}, fmt.Errorf("%w %q", errUnknownDevice, id)
	case !d.Online:
		return g.cmds.add(id, cmd, stateOffline, time.Now()), fmt.Errorf("%w: %s", errOffline, id)
	}
	// Tracked and announced before it is published, so that the board's
	// confirmation, queued after it, is always seen after "pending".
	c := g.cmds.add(id, cmd, statePending, time.Now())
	g.postEvent(c.event())
	if err := g.bus.Publish(g.topics.LEDSet(id), []byte(cmd.Payload()), false, 1); err != nil {
		return command{}, fmt.Errorf("command %s to %s: %w", cmd, id, err) // it will time out
	}
	g.m.commands.Inc()
	return c, nil
}

// postEvent broadcasts ev in order with the queued messages, in the same
// frame as the events of the batch it falls in. It does not hurry the loop:
// ev waits up to countGap, even on a quiet gateway, unless something
// urgent comes first. So a command's pending event, posted just before the
// command is published, usually goes out in one frame with the board's
// confirmation instead of costing a fan-out of its own.
func (g *Gateway) postEvent(ev devices.Event) {
	g.inMu.Lock()
	g.inQ = append(g.inQ, inMsg{ev: &ev})
	if g.inNotBefore.IsZero() {
		g.inNotBefore = time.Now().Add(g.countGap())
	}
	g.inMu.Unlock()
	g.kick()
}

// forget clears a board's retained topics and removes it from the fleet and
// every browser.
func (g *Gateway) forget(id string) error {
	g.mu.RLock()
	_, ok := g.fleet.Get(id)
	g.mu.RUnlock()
	if !ok {
		return fmt.Errorf("%w %q", errUnknownDevice, id)
	}
	if _, err := g.bus.ClearRetained(g.topics.DeviceFilter(id)); err != nil {
		return fmt.Errorf("forget %s: %w", id, err)
	}
	// The clears were queued before this op, so it runs after them.
	return g.runOnLoop(func() {
		if ev, ok := g.fleet.Forget(id); ok {
			g.fanOut([]devices.Event{ev})
		}
	})
}

// Devices returns a copy of every known device, sorted by id.
func (g *Gateway) Devices() []devices.Device {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.fleet.Snapshot(nil)
}

// Healthy returns nil while the gateway and the MQTT side serve.
func (g *Gateway) Healthy() error {
	g.mu.RLock()
	closed := g.closed
	g.mu.RUnlock()
	if closed {
		return errClosed
	}
	if g.cfg.Health != nil {
		return g.cfg.Health()
	}
	return nil
}

// closeSession closes every browser that came with session sid (1008,
// "logged out").
func (g *Gateway) closeSession(sid string) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	g.eachBrowser(func(c *client) {
		if c.session == sid {
			c.close(websocketPolicy, "logged out", true)
		}
	})
}

// eachBrowser calls fn for every browser, /ws and /ws/<id>. Caller holds
// mu (read or write).
func (g *Gateway) eachBrowser(fn func(*client)) {
	for c := range g.clients {
		fn(c)
	}
	for _, subs := range g.single {
		for c := range subs {
			fn(c)
		}
	}
}

// Close stops the loop and closes every browser with a close frame (1001,
// going away), waiting for their goroutines. It is safe to call more than
// once. The HTTP server should be shut down first so no new browser comes.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		g.mu.Lock()
		g.closed = true
		var all []*client
		g.eachBrowser(func(c *client) { all = append(all, c) })
		g.mu.Unlock()
		close(g.stop)
		g.loopWG.Wait()
		for _, c := range all {
			c.close(websocketGoingAway, "server shutting down", true)
		}
		// A writer stuck on a browser that does not read gets a moment to
		// send its close frame, then every connection is cut.
		waited := make(chan struct{})
		go func() { g.connsWG.Wait(); close(waited) }() // ends when every pump has returned
		select {
		case <-waited:
		case <-time.After(2 * time.Second):
			for _, c := range all {
				_ = c.ws.Close()
			}
			<-waited
		}
		g.stopWorkers() // after the close frames: the workers write them
	})
	return nil
}

// rateLog logs at most one line a second and counts what it left out.
type rateLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (r *rateLog) log(l *slog.Logger, msg string, args ...any) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.last) < time.Second {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	r.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed_since_last", n)
	}
	l.Warn(msg, args...)
}
