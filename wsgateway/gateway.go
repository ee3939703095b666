// The Gateway: its state, New and Close, and what it reports (Devices,
// Healthy).

package wsgateway

import (
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

// Gateway connects browsers to the fleet. Create it with New, serve
// Handler, feed it with Ingest and stop it with Close.
type Gateway struct {
	cfg     Config
	topics  devices.Topics
	bus     Bus
	log     *slog.Logger
	m       *metrics
	static  http.Handler
	handler http.Handler        // what Handler returns
	upg     *websocket.Upgrader // built once: shares the write buffer pool

	declared map[string]bool // the ids of Config.Declared: never "new"; read only

	mu      sync.RWMutex // guards fleet, clients, single, closed, snap*
	fleet   *devices.Fleet
	snap    []byte                          // the /ws connect snapshot, encoded once while the fleet is unchanged
	snapN   int                             // events in snap
	snapOK  bool                            // snap matches the fleet
	clients map[*client]struct{}            // /ws browsers
	single  map[string]map[*client]struct{} // /ws/<id> browsers by id
	closed  bool

	inMu        sync.Mutex // guards inQ, inUrgent, inNotBefore
	inQ         []inMsg
	inUrgent    bool          // inQ holds something other than a count: no coalescing wait
	inNotBefore time.Time     // non-zero: a posted event waits until then (see postEvent)
	nBrowser    atomic.Int64  // connected browsers (/ws and /ws/<id>), for the coalescing gap
	inKick      chan struct{} // cap 1: inQ is not empty
	stop        chan struct{} // closed by Close
	loopWG      sync.WaitGroup
	connsWG     sync.WaitGroup // client readers and writer roles (client.startWriter to release)
	ready       readyQueue     // browsers waiting for a pool worker (pool.go)
	workersWG   sync.WaitGroup // pool workers

	external map[string][]external // MQTT commands waiting for their board's led; the loop's, under mu
	// listening is since when the MQTT side has been healthy, for the
	// silence rule (Config.SilenceGrace); zero while it is not. The loop's.
	listening time.Time

	badLog   rateLog
	sessions *sessions
	cmds     *tracker
	patchMu  sync.Mutex // held by a PATCH of a board's name and tags, from reading them to applying them

	closeOnce sync.Once
}

// New returns a gateway that publishes commands on bus. It starts the loop
// goroutine; Close stops it.
func New(cfg Config, bus Bus) (*Gateway, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	sess, err := newSessions(cfg.SessionKey, cfg.SessionTTL, cfg.RevokedSessions)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	fleet, err := devices.NewFleet(cfg.Declared, cfg.MaxDevices)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if cfg.Meta != nil {
		if err := loadMeta(fleet, cfg.Meta, cfg.Logger); err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
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
		external: map[string][]external{},
		declared: map[string]bool{},
	}
	for _, d := range cfg.Declared {
		g.declared[d.ID] = true
	}
	if cfg.History != nil {
		g.cmds.done = g.commandDone
	}
	if g.handler, err = g.newHandler(); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.m = newMetrics(g)
	g.m.setFleet(fleet.Len(), fleet.OnlineCount()) // declared devices are known from the start
	g.loopWG.Add(2)
	g.startWorkers()
	go g.loop()   // ends when Close closes g.stop
	go g.pinger() // ends when Close closes g.stop
	if cfg.SharedPoll > 0 && (cfg.RevokedSessions != nil || cfg.Meta != nil) {
		g.loopWG.Add(1)
		go g.sharedPoller() // ends when Close closes g.stop
	}
	return g, nil
}

// device returns a copy of the known device id.
func (g *Gateway) device(id string) (devices.Device, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.fleet.Get(id)
}

// Known reports whether board id is known.
func (g *Gateway) Known(id string) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.fleet.Known(id)
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
			c.close(websocketGoingAway, "server shutting down")
		}
		// A writer stuck on a browser that does not read gets a moment to
		// send its close frame, then every connection is cut.
		waited := make(chan struct{})
		go func() { g.connsWG.Wait(); close(waited) }() // ends when every reader and writer role has ended
		select {
		case <-waited:
		case <-time.After(2 * time.Second):
			for _, c := range all {
				c.abort()
			}
			<-waited
		}
		g.stopWorkers() // after the close frames: the workers write them
	})
	return nil
}
