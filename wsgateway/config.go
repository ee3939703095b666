// Config, the gateway's settings, and Observer, which hears about the fleet.

package wsgateway

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"switchyard/devices"
	"switchyard/history"
)

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
	// SharedPoll is how often the gateway reads again what other control
	// planes sharing its stores change: the logouts in RevokedSessions
	// (their cookies are refused here, and their WebSockets closed,
	// within SharedPoll) and the names and tags in Meta (browsers hear of
	// each as of a PATCH here). 0 reads them at start only.
	SharedPoll time.Duration
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
	// info, name or tags, or is forgotten (Home Assistant discovery uses
	// it).
	Observer Observer
	// Health reports whether the MQTT side is serving; nil means it is.
	Health func() error
	// SilenceGrace, when set, marks a board offline that has sent nothing
	// for SilenceIntervals × its interval_ms (1 s when its info does not
	// say) plus SilenceGrace, and online again at its next message; its
	// history says offline "silent". For brokers that may drop a board
	// without publishing its Will (external mode sets 15 s). Quiet while
	// Health fails does not count. 0 leaves boards online until their
	// status says otherwise; SilenceIntervals 0 means 3.
	SilenceGrace     time.Duration
	SilenceIntervals int
	// MQTTClients, when set, is exported as a metric.
	MQTTClients func() int64
	// MQTTThrottled, when set, is exported as
	// switchyard_auth_throttled_total{via="mqtt"}: the MQTT CONNECTs
	// refused because their address failed too often (the broker's
	// Throttled).
	MQTTThrottled func() uint64
	// CoalescePerBrowser and CoalesceMax bound how long counts may wait to
	// share a frame: CoalescePerBrowser per connected browser, at most
	// CoalesceMax, after the last fan-out (see countGap); 0 means 20µs and
	// 25ms.
	CoalescePerBrowser time.Duration
	CoalesceMax        time.Duration
	// Writers is how many goroutines write frames to browsers, one per
	// CPU; 0 means runtime.GOMAXPROCS(0).
	Writers int
	// Routes are handlers of other packages served behind the gateway's
	// access rules (see Route); nil means none.
	Routes []Route
	// Snapshot, when set, returns extra events (each one JSON object) that
	// a /ws browser gets right after the fleet's state when it connects
	// (the update service sends the current rollouts). It is called on the
	// connecting browser's goroutine, with no lock of the gateway held,
	// once the browser already receives Broadcast's events: an event
	// broadcast meanwhile may arrive just before or after the snapshot's,
	// so each should carry a whole state, the last one winning. It must
	// not block.
	Snapshot func() [][]byte
	// Gatherer, when set, adds other packages' metrics (the update
	// service's) to /metrics, after the gateway's own.
	Gatherer prometheus.Gatherer
	// History, when set, hears every board event the loop applies, in
	// order, with who caused it (package recorder keeps them); nil keeps
	// no history.
	History History
	// Audit, when set, hears what people do here: logins, logouts,
	// commands, forget, rename and retag; nil keeps no audit log.
	Audit Auditor
	// Meta, when set, keeps the names and tags people give boards
	// (PATCH /api/devices/<id>) across restarts: New loads them, and they
	// win over Declared's. nil keeps them in memory only.
	Meta MetaStore
	// Adopted, when set, tells the boards people know of (created or
	// adopted by an admin, or a device user's) from boards that merely
	// connected: a known board it answers false for, and that is not in
	// Declared, is "new" in the API. nil: no board is new. It is called
	// while the gateway reads its fleet and must not block.
	Adopted func(id string) bool
	// Forgetting, when set, runs when DELETE /api/devices/<id> is about
	// to forget a known board, with the request's context: package
	// accounts deletes the device user of a board it created there, and
	// disconnects it, so that the board cannot come back. An error
	// answers 500 and forgets nothing.
	Forgetting func(ctx context.Context, id string) error
	// Logger receives the gateway's logs; nil discards them.
	Logger *slog.Logger
}

// History keeps the boards' past. Its methods run on the gateway's loop
// goroutine and must not block.
type History interface {
	// Record takes one event of a board's history.
	Record(e history.Event)
	// Count takes a count a board sent (sampled, not kept one by one).
	Count(id string, n int64, at time.Time)
}

// Auditor keeps the audit log. Audit must not block: it runs on request
// and loop goroutines.
type Auditor interface {
	Audit(e history.Entry)
}

// MetaStore keeps the names and tags people give boards at run time.
type MetaStore interface {
	// DeviceMeta returns every board's saved meta.
	DeviceMeta(ctx context.Context) ([]devices.Meta, error)
	// SaveDeviceMeta saves one board's meta, replacing what was saved.
	SaveDeviceMeta(ctx context.Context, m devices.Meta) error
}

// Observer hears about the fleet. Its methods run on the gateway's loop
// goroutine and must not block.
type Observer interface {
	DeviceChanged(d devices.Device)
	DeviceRemoved(id string)
}

// withDefaults returns cfg with each zero value replaced by its documented
// default.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Topics.Prefix() == "" {
		cfg.Topics = devices.MustTopics(devices.DefaultPrefix)
	}
	orDefault(&cfg.QueueBytes, 1<<20)
	orDefault(&cfg.PingInterval, 25*time.Second)
	orDefault(&cfg.PongWait, 60*time.Second)
	orDefault(&cfg.WriteWait, 10*time.Second)
	orDefault(&cfg.CoalescePerBrowser, 20*time.Microsecond)
	orDefault(&cfg.CoalesceMax, 25*time.Millisecond)
	orDefault(&cfg.SessionTTL, 168*time.Hour)
	orDefault(&cfg.CommandRate, 10)
	orDefault(&cfg.CommandBurst, 20)
	orDefault(&cfg.CommandTimeout, 5*time.Second)
	orDefault(&cfg.Writers, runtime.GOMAXPROCS(0))
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.SessionKey) == 0 {
		cfg.SessionKey = make([]byte, 32)
		if _, err := rand.Read(cfg.SessionKey); err != nil {
			return cfg, fmt.Errorf("session key: %w", err)
		}
	}
	return cfg, nil
}

// orDefault sets *v to def when it is zero (or negative).
func orDefault[T int | float64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
