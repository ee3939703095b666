// Package updates is the control plane's firmware update service: the
// firmware API (upload, list, delete), the download path boards fetch
// builds from (GET /firmware/<sha256>), the update key's public half, the
// rollouts API, and the engine that drives rollouts.
//
// The decisions are package rollout's (pure: which boards a rollout skips,
// its waves, when a board is sent its job, updated or failed); records are
// kept by a Store (package store in production) and the bytes by Files.
// This package ties them to the fleet and the wire: it watches every board
// message (Ingest), steps every rollout that is not finished on each
// relevant change and once a second, publishes the jobs Step decides as
// update/set commands, saves what changed, and tells browsers.
//
// One goroutine, the engine, owned by the Service and ended by Close, does
// the stepping, sending, saving and broadcasting. HTTP handlers run on
// their own goroutines and meet the engine under Service.mu; Ingest runs on
// the MQTT delivery goroutine and only updates the fleet view, under its
// own lock, and wakes the engine without waiting.
package updates

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"switchyard/devices"
	"switchyard/rollout"
	"switchyard/store"
)

// Store keeps firmware records and rollouts (package store's *DB). Its
// errors wrap store.ErrExists and store.ErrNotFound as documented there.
type Store interface {
	AddFirmware(ctx context.Context, fw rollout.Firmware) error
	Firmware(ctx context.Context, sha string) (rollout.Firmware, error)
	ListFirmware(ctx context.Context) ([]rollout.Firmware, error)
	DeleteFirmware(ctx context.Context, sha string) error
	CreateRollout(ctx context.Context, r *rollout.Rollout) error
	SaveRollout(ctx context.Context, r *rollout.Rollout) error // r is not kept: the engine reuses it
	Rollouts(ctx context.Context) ([]*rollout.Rollout, error)

	// What several control planes sharing the database read and write
	// of each other's (see cluster.go).
	Rollout(ctx context.Context, id string) (*rollout.Rollout, error)
	RolloutStamps(ctx context.Context) (map[string]time.Time, error)
	RequestRollout(ctx context.Context, id, action string, at time.Time) (int64, error)
	RolloutRequests(ctx context.Context) ([]store.RolloutRequest, error)
	AnswerRolloutRequest(ctx context.Context, n int64, result string, at time.Time) error
	RolloutRequestAnswer(ctx context.Context, n int64) (string, error)
}

// Role says whether this control plane is the primary of its database,
// the one that drives rollouts (package primary's *Elector).
type Role interface {
	Primary() bool
}

// Files keeps the firmware bytes, named by their SHA-256 (package store's
// *Files). Put's errors wrap store.ErrTooLarge and store.ErrExists; Open's
// and Remove's store.ErrNotFound.
type Files interface {
	Put(r io.Reader, maxSize int64) (sha string, size int64, err error)
	Open(sha string) (*os.File, error)
	Remove(sha string) error
}

// Publisher publishes MQTT messages (the embedded broker or the external
// broker's client).
type Publisher interface {
	Publish(topic string, payload []byte, retain bool, qos byte) error
}

// Broadcaster sends one JSON event to every dashboard browser; it must
// not block.
type Broadcaster interface {
	Broadcast(event []byte)
}

// Config configures a Service. Store, Files, Publisher and Key are
// required; every other zero value means the default its comment names.
type Config struct {
	Store     Store
	Files     Files
	Publisher Publisher
	// Broadcaster receives the rollout events for browsers; nil: none.
	Broadcaster Broadcaster
	// Topics is the topic layout; the zero value means prefix "devices".
	Topics devices.Topics
	// Key is the update key: it signs every uploaded build.
	Key ed25519.PrivateKey
	// MaxSize bounds a firmware upload in bytes; 0 means 64 MiB.
	MaxSize int64
	// PublicURL (http.public_url, no trailing slash) starts every job's
	// download URL when set. When empty, a job's URL is HTTPScheme, the
	// host of BoardAddr(id) and HTTPPort; with BoardAddr nil too (external
	// mode), rollouts cannot start (400 naming http.public_url).
	PublicURL string
	// BoardAddr returns the local address ("host:port") of board id's own
	// MQTT connection: the address the board reached the broker at.
	BoardAddr func(id string) (localAddr string, ok bool)
	// HTTPScheme and HTTPPort are the HTTP listener's; "" means "http".
	HTTPScheme string
	HTTPPort   int
	// Groups are the configured groups of boards; "all" is every board
	// the service has heard of.
	Groups map[string][]string
	// Tags returns the known boards with a tag (the caller may keep the
	// slice); nil means there are no tags here, and a rollout target
	// {"tag":…} is answered 400.
	Tags func(tag string) []string
	// MaxDownloads bounds the firmware downloads streamed at once; more
	// wait their turn (bounded by their own request). 0 means 64. Each
	// one streaming holds a 32 KiB copy buffer of net/http's for its whole
	// length, so a thousand boards at once would hold 32 MiB; a few dozen
	// saturate loopback or a LAN anyway. Rollouts also send jobs to at
	// most twice this many boards still fetching (rollout.MaxFetching):
	// the streams stay full while the rest of a large wave waits for its
	// job instead of holding an HTTP request (and a fresh MQTT session
	// after its restart) open in the control plane all at once.
	MaxDownloads int
	// JobRate bounds how fast a rollout sends jobs: boards started a
	// second (rollout.SendRate), in bursts of a fifth of a second's worth;
	// 0 means 100. Each board that updates restarts its MQTT session, and
	// with it a dozen messages through the broker and to every browser.
	// Unbounded, the 900 boards of a wave on loopback restarted within a
	// second or two, and the live path's p99 over a rollout was 1.2-1.6
	// times its p99 without one; at 100 a second, 1.07-1.82 times over
	// 52 runs, with 5 MiB builds still served at 559-627 MB/s in the
	// best second (bench/README.md, 2026-12-05). 50 a second was no
	// better: the shift follows a rollout's total work. A
	// wave of 900 boards takes 9 s to start, which on Wi-Fi its downloads
	// take anyway.
	JobRate float64
	// StepInterval is how often every rollout not finished is stepped
	// besides the board messages that wake the engine; 0 means 1s.
	StepInterval time.Duration
	// Audit, when set, hears of every firmware upload and delete and every
	// rollout start, pause, resume and abort.
	Audit Auditor
	// Role says whether this control plane drives the rollouts: sends
	// jobs, steps and saves them. One that does not (several control
	// planes share the database) follows the primary's records and
	// queues pause, resume and abort for it. nil: always the primary.
	Role Role
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
	// Registerer takes the service's metrics; nil means a registry of its
	// own that nothing serves.
	Registerer prometheus.Registerer
}

// The defaults of Config.
const (
	DefaultMaxSize      = 64 << 20
	DefaultMaxDownloads = 64
	DefaultJobRate      = 100
	DefaultStepInterval = time.Second
)

// saveEvery and broadcastEvery bound how often one rollout is saved and
// broadcast while only its boards' progress changes: Step may change a
// rollout of 1,000 boards many times a second. A send, a board or wave or
// rollout state change is saved at once (a job must be on disk before it
// is published, so a restart never sends a board a second job while it
// works on the first, which it would refuse as busy).
//
// A big rollout is broadcast less often: its event (every board with its
// state, about 100 bytes a board) goes to every browser, so the pause after
// one is as long as sending it at castRate would take, between
// broadcastEvery and maxBroadcastEvery (1 s for 1,000 boards). Measured
// with bench/rollout.sh: 1,000 boards every 250 ms were 40 MB/s of
// WebSocket writes to 100 browsers, six times the live path's own bytes.
const (
	saveEvery         = time.Second
	broadcastEvery    = 250 * time.Millisecond
	maxBroadcastEvery = 2 * time.Second
	castRate          = 100 << 10 // bytes a second
)

// castPause is the least time between two broadcasts of a rollout whose
// event has n bytes.
func castPause(n int) time.Duration {
	d := time.Duration(n) * time.Second / castRate
	return min(max(d, broadcastEvery), maxBroadcastEvery)
}

// Service is the update service. Make one with New; Close stops it.
type Service struct {
	cfg   Config
	log   *slog.Logger
	fleet *fleetView

	// mu guards rollouts, byID and every entry's fields, the rollouts
	// themselves included. It is held for memory work only, never across
	// I/O.
	mu       sync.Mutex
	rollouts []*entry // newest first
	byID     map[string]*entry

	// createMu makes the checks and writes of a rollout's creation, of a
	// firmware upload's record and of a firmware deletion one step each:
	// no rollout starts on a build being deleted, no board joins two.
	// Taken before mu.
	createMu sync.Mutex

	// saveMu orders saves: each takes its copy of a rollout after taking
	// saveMu, so a later save never writes an older copy.
	saveMu sync.Mutex

	kick      chan struct{} // wakes the engine; one pending wake is enough
	quit      chan struct{} // closed by Close
	done      chan struct{} // closed when the engine has returned
	closeOnce sync.Once

	// The engine's own: whether it drove the rollouts at its last cycle
	// (set by New before the engine starts), and when it last read what
	// other control planes wrote.
	primary  bool
	lastPoll time.Time

	served    prometheus.Counter   // firmware bytes served
	slots     chan struct{}        // one token per download streaming (MaxDownloads)
	downloads *prometheus.GaugeVec // downloads streaming and waiting
}

// entry is one rollout as the service holds it.
type entry struct {
	r  *rollout.Rollout
	fw rollout.Firmware // the build it installs (its signature, size); zero if it could not be read

	version   uint64        // incremented by every change to r
	saved     uint64        // the version last saved
	urgent    bool          // a change that must be saved at once (see saveEvery)
	lastSave  time.Time     // when it was last saved
	announced uint64        // the version last broadcast
	lastCast  time.Time     // when it was last broadcast
	castPause time.Duration // from lastCast to the next broadcast (castPause of the last event)
	castNow   bool          // the rollout's state changed, or a user acted: broadcast without waiting

	saving *rollout.Rollout // the copy persist saves, reused from save to save; Service.saveMu guards it
}

// changed records a change to e.r; urgent ones are saved at once. mu is
// held.
func (e *entry) changed(urgent bool) {
	e.version++
	e.urgent = e.urgent || urgent
}

// New makes the service: it loads the rollouts from the store and starts
// the engine, which goes on with the rollouts that are not finished. After
// a restart every board counts as offline from now until it is heard from
// again (no board is failed for the time the control plane was down).
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil, cfg.Files == nil, cfg.Publisher == nil:
		return nil, errors.New("updates: Store, Files and Publisher are required")
	case len(cfg.Key) != ed25519.PrivateKeySize:
		return nil, errors.New("updates: an ed25519 update key is required")
	}
	if cfg.Topics.Prefix() == "" {
		cfg.Topics = devices.MustTopics(devices.DefaultPrefix)
	}
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = DefaultMaxSize
	}
	if cfg.MaxDownloads <= 0 {
		cfg.MaxDownloads = DefaultMaxDownloads
	}
	if cfg.JobRate <= 0 {
		cfg.JobRate = DefaultJobRate
	}
	if cfg.HTTPScheme == "" {
		cfg.HTTPScheme = "http"
	}
	if cfg.StepInterval <= 0 {
		cfg.StepInterval = DefaultStepInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	s := &Service{
		cfg:   cfg,
		log:   cfg.Logger,
		fleet: newFleetView(cfg.Topics, cfg.Now()),
		byID:  map[string]*entry{},
		kick:  make(chan struct{}, 1),
		slots: make(chan struct{}, cfg.MaxDownloads),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	s.primary = s.isPrimary()
	if err := s.load(); err != nil {
		return nil, err
	}
	if err := s.registerMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	go s.run() // ends when Close closes quit
	return s, nil
}

// load reads every rollout from the store, with the build of each that
// is not done, in place of those the service held.
func (s *Service) load() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs, err := s.cfg.Store.Rollouts(ctx)
	if err != nil {
		return fmt.Errorf("updates: load rollouts: %w", err)
	}
	list := make([]*entry, 0, len(rs))
	byID := make(map[string]*entry, len(rs))
	for _, r := range rs {
		e := s.newEntry(ctx, r)
		if !r.State.Finished() && s.primary {
			s.log.Info("rollout goes on", "rollout", r.ID, "state", r.State, "version", r.Version)
		}
		list = append(list, e)
		byID[r.ID] = e
	}
	s.mu.Lock()
	s.rollouts, s.byID = list, byID
	s.mu.Unlock()
	return nil
}

// newEntry is r as loaded, with its build when it is not done.
func (s *Service) newEntry(ctx context.Context, r *rollout.Rollout) *entry {
	e := &entry{r: r}
	if r.State != rollout.Done {
		var err error
		if e.fw, err = s.cfg.Store.Firmware(ctx, r.Firmware); err != nil {
			// Nothing can be sent for it; Step still follows its boards.
			s.log.Error("rollout's firmware unreadable: its jobs cannot be sent", "rollout", r.ID, "err", err)
		}
	}
	return e
}

// isPrimary reports whether this control plane drives the rollouts now.
func (s *Service) isPrimary() bool { return s.cfg.Role == nil || s.cfg.Role.Primary() }

// Close stops the engine, after it has saved what it had not yet saved.
// It is safe to call more than once.
func (s *Service) Close() {
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.done
	})
}

// poke wakes the engine without waiting.
func (s *Service) poke() {
	select {
	case s.kick <- struct{}{}:
	default: // a wake is pending already
	}
}
