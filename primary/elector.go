package primary

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Store keeps the leases (package store's *DB).
type Store interface {
	// AcquireLease takes or renews lease name for holder for ttl, by the
	// database's clock, and reports whether holder has it now.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease gives the lease up when holder has it.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Config configures an Elector; every zero value means the default its
// comment names.
type Config struct {
	// Holder names this control plane in the lease: the same across its
	// restarts (a control plane restarted at once takes its own lease
	// back) and different from every other one's. Required with a Store.
	Holder string
	// Lease is the lease's name; "" means "primary".
	Lease string
	// TTL is how long a grant lasts; 0 means 15s. A primary that dies
	// is replaced within TTL plus RenewEvery.
	TTL time.Duration
	// RenewEvery is how often the holder renews, and how often the
	// others try to take the lease; 0 means 5s.
	RenewEvery time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives a line at every change of role; nil discards.
	Logger *slog.Logger
	// Registerer takes the gauge switchyard_primary; nil means a
	// registry of its own that nothing serves.
	Registerer prometheus.Registerer
}

// The defaults of Config.
const (
	DefaultLease      = "primary"
	DefaultTTL        = 15 * time.Second
	DefaultRenewEvery = 5 * time.Second
)

// marginDiv sets how much earlier than the database's expiry a holder's
// own term ends, TTL/marginDiv (1 s of 15): room for the clocks' rates
// and a process scheduled late.
const marginDiv = 15

// retryAfterError is how soon an acquisition that failed (no answer) is
// tried again, within the term.
const retryAfterError = time.Second

// Elector holds this control plane's side of the lease. Make one with New;
// Close stops it and releases the lease.
type Elector struct {
	cfg Config
	st  Store // nil: the only control plane on its database
	log *slog.Logger

	mu   sync.Mutex // guards term
	term Term

	// The loop's own: the role last logged and the error last logged.
	logged    bool
	loggedErr string

	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// New makes the elector and asks for the lease once before it returns (so
// a control plane alone on its database is primary from its start), then
// keeps asking on a goroutine of its own. With st nil, this control plane
// is the only one on its database (SQLite): primary for good, no lease.
func New(cfg Config, st Store) (*Elector, error) {
	if st != nil && cfg.Holder == "" {
		return nil, errors.New("primary: a Holder is required")
	}
	if cfg.Lease == "" {
		cfg.Lease = DefaultLease
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.RenewEvery <= 0 {
		cfg.RenewEvery = DefaultRenewEvery
	}
	if cfg.RenewEvery >= cfg.TTL-cfg.TTL/marginDiv {
		return nil, errors.New("primary: RenewEvery must be well shorter than TTL")
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
	e := &Elector{cfg: cfg, st: st, log: cfg.Logger, quit: make(chan struct{}), done: make(chan struct{})}
	gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "switchyard_primary",
		Help: "1 while this control plane is the primary of its database (drives rollouts, records the boards' history), else 0.",
	}, func() float64 {
		if e.Primary() {
			return 1
		}
		return 0
	})
	if err := cfg.Registerer.Register(gauge); err != nil {
		return nil, err
	}
	if st == nil {
		close(e.done)
		e.log.Info("primary: the only control plane on this database")
		return e, nil
	}
	e.attempt()
	if !e.logged {
		e.log.Info("primary: following: another control plane is the primary", "holder", cfg.Holder)
	}
	go e.loop() // ends when Close closes quit
	return e, nil
}

// Primary reports whether this control plane is the primary now.
func (e *Elector) Primary() bool {
	if e.st == nil {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.term.Primary(e.cfg.Now())
}

// Holder is the name this control plane holds the lease under.
func (e *Elector) Holder() string { return e.cfg.Holder }

// Close stops asking and releases the lease when this control plane holds
// it, so that another takes over at once. It may be called again.
func (e *Elector) Close() {
	e.closeOnce.Do(func() {
		if e.st == nil {
			return
		}
		close(e.quit)
		<-e.done
		e.mu.Lock()
		held := e.term.Primary(e.cfg.Now())
		e.term = Term{}
		e.mu.Unlock()
		if !held {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := e.st.ReleaseLease(ctx, e.cfg.Lease, e.cfg.Holder); err != nil {
			e.log.Warn("primary: stepped down; the lease was not released and expires by itself", "holder", e.cfg.Holder, "err", err)
			return
		}
		e.log.Info("primary: stepped down and released the lease", "holder", e.cfg.Holder)
	})
}

// loop renews (or tries to take) the lease every RenewEvery, sooner after
// a failure, and wakes at the term's deadline to log a step down.
func (e *Elector) loop() {
	defer close(e.done)
	t := time.NewTimer(e.next(nil))
	defer t.Stop()
	for {
		select {
		case <-e.quit:
			return
		case <-t.C:
		}
		t.Reset(e.next(e.attempt()))
	}
}

// next is how long until the next attempt, after one that answered err.
func (e *Elector) next(err error) time.Duration {
	wait := e.cfg.RenewEvery
	if err != nil {
		wait = retryAfterError
	}
	e.mu.Lock()
	term := e.term
	e.mu.Unlock()
	if now := e.cfg.Now(); term.Primary(now) {
		wait = min(wait, term.Deadline.Sub(now))
	} else if term.Held {
		wait = 0 // past the deadline: the next attempt logs the step down
	}
	return max(wait, time.Millisecond)
}

// attempt asks for the lease once and logs a change of role.
func (e *Elector) attempt() error {
	asked := e.cfg.Now()
	e.mu.Lock()
	term := e.term
	e.mu.Unlock()
	// An answer that comes after the term's deadline is of no use.
	timeout := e.cfg.RenewEvery
	if term.Primary(asked) {
		timeout = term.Deadline.Sub(asked)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	got, err := e.st.AcquireLease(ctx, e.cfg.Lease, e.cfg.Holder, e.cfg.TTL)
	cancel()
	e.mu.Lock()
	if err == nil {
		e.term = Renewed(asked, got, e.cfg.TTL, e.cfg.TTL/marginDiv)
	} else if !e.term.Primary(e.cfg.Now()) {
		e.term = Term{}
	}
	primary := e.term.Primary(e.cfg.Now())
	e.mu.Unlock()
	e.report(primary, err)
	return err
}

// report logs a change of role, and a failing database once per error.
func (e *Elector) report(primary bool, err error) {
	switch {
	case primary && !e.logged:
		e.log.Info("primary: this control plane is now the primary (drives rollouts, records the boards' history)", "holder", e.cfg.Holder)
	case !primary && e.logged && err != nil:
		e.log.Warn("primary: stepped down: the lease could not be renewed in time", "holder", e.cfg.Holder, "err", err)
	case !primary && e.logged:
		e.log.Warn("primary: stepped down: another control plane holds the lease", "holder", e.cfg.Holder)
	}
	e.logged = primary
	msg := ""
	if err != nil {
		msg = err.Error()
		if msg != e.loggedErr {
			e.log.Warn("primary: the lease could not be asked for", "holder", e.cfg.Holder, "primary", primary, "err", err)
		}
	}
	e.loggedErr = msg
}
