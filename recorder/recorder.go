// Package recorder keeps the fleet's history and the audit log: it takes
// board events, counts and audit entries from the gateway without ever
// blocking it, writes them to the database in batches, one transaction a
// flush, prunes what is older than the retention, and serves the history,
// counts and audit API (Handlers).
//
// Record, Count and Audit append to a queue under a mutex and return; a
// goroutine of the recorder's own swaps the queue out every FlushEvery and
// writes it. Counts are not records: a history.Sampler keeps each board's
// last count of the minute, and a point a board a minute is queued. The
// queue is bounded (MaxQueue): beyond it records are dropped and counted
// (switchyard_history_dropped_total), never waited for. A batch whose
// write fails is kept and written again, before newer records, at the next
// flush; the bound counts it too, so a database that stays down costs
// MaxQueue records of memory and then drops.
//
// What a kill -9 loses is what was queued since the last flush: at most
// FlushEvery plus the time of one write. Close writes everything, the
// count of the minute not yet over included.
//
// Pruning runs on a second goroutine: a prune of a month of 1,000 boards
// takes seconds (in deletes of a few thousand rows, each its own
// transaction), and flushes go on between its deletes rather than after
// it, so that a kill -9 during a prune still loses at most a flush.
//
// Alternatives rejected: a channel per record (a full channel must block or
// drop at every send, and the writer would take records one by one; the
// slice is swapped whole), and writing on the gateway's loop (a database
// write in the hot path).
package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"switchyard/history"
)

// Store is the database the recorder writes to and the API reads from;
// *store.DB is one.
type Store interface {
	// AppendHistory writes the records in one transaction, all or none.
	AppendHistory(ctx context.Context, events []history.Event, points []history.Point, audit []history.Entry) error
	// PruneHistory deletes every record from before before.
	PruneHistory(ctx context.Context, before time.Time) (int64, error)
	// Events returns a board's events, newest first.
	Events(ctx context.Context, device string, q history.Query) ([]history.Event, error)
	// Points returns a board's count points from since to until, oldest
	// first.
	Points(ctx context.Context, device string, since, until time.Time) ([]history.Point, error)
	// AuditLog returns the audit entries, of actor only when it is not
	// empty, newest first.
	AuditLog(ctx context.Context, q history.Query, actor string) ([]history.Entry, error)
	// HasHistory reports whether a board has any event or point stored.
	HasHistory(ctx context.Context, device string) (bool, error)
	// LastOnline returns each board's newest online or offline event's
	// kind.
	LastOnline(ctx context.Context) (map[string]history.Kind, error)
}

// Role says whether this control plane is the primary of its database
// (package primary's *Elector).
type Role interface {
	Primary() bool
}

// Config is the recorder's settings; the zero value of each field is its
// documented default.
type Config struct {
	// FlushEvery is how often the queue is written; 0 means 250ms. A
	// kill -9 loses what was queued since the last flush.
	FlushEvery time.Duration
	// Retention is how long records are kept (history.retention); 0
	// means 720h.
	Retention time.Duration
	// PruneEvery is how often records older than Retention are deleted;
	// 0 means 1h. The first prune runs a minute after New (or after
	// PruneEvery, when shorter).
	PruneEvery time.Duration
	// MaxQueue bounds the records waiting to be written (events, count
	// points and audit entries, a batch being retried included); beyond
	// it new records are dropped and counted. 0 means 100,000.
	MaxQueue int
	// Role says whether this control plane records the boards' history
	// (the primary of a database several control planes share): only
	// the primary records board events (every kind but commands) and
	// counts, and prunes; every control plane records its own commands
	// and audit entries. nil: always.
	Role Role
	// Known reports whether a board is known now; the API answers 404
	// for a board neither known nor in the history. nil: the history
	// alone decides.
	Known func(id string) bool
	// Now is the clock of flushes (which count steps are over), of
	// retention and of /counts' default window; nil means time.Now.
	Now func() time.Time
	// Logger receives the recorder's logs; nil discards them.
	Logger *slog.Logger
	// Registerer takes the recorder's metrics; nil means a registry of
	// its own that nothing serves.
	Registerer prometheus.Registerer
}

// The defaults of Config.
const (
	DefaultFlushEvery = 250 * time.Millisecond
	DefaultRetention  = 720 * time.Hour
	DefaultPruneEvery = time.Hour
	DefaultMaxQueue   = 100_000
)

const (
	// firstPrune is how long after New the first prune runs: soon, but
	// not in the middle of the control plane's start.
	firstPrune = time.Minute
	// writeTimeout bounds one batch's write: a database that hangs
	// makes the flush fail, and the batch is retried.
	writeTimeout = 30 * time.Second
	// errorLogEvery spaces the logs of failing writes: the first
	// failure is logged at once, then one line this often while they go
	// on.
	errorLogEvery = time.Minute
	// keepBuffers is the largest batch whose slices are kept for the
	// next one; a burst's larger ones go to the garbage collector.
	keepBuffers = 16 << 10
)

// endOfTime is after every count step: Due at endOfTime hands out the
// steps not over yet too.
var endOfTime = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// ErrClosed is Flush's answer once the recorder is closed.
var ErrClosed = errors.New("recorder closed")

// batch is records to write together.
type batch struct {
	events []history.Event
	points []history.Point
	audit  []history.Entry
}

func (b *batch) len() int { return len(b.events) + len(b.points) + len(b.audit) }

// add appends o's records to b's.
func (b *batch) add(o batch) {
	b.events = append(b.events, o.events...)
	b.points = append(b.points, o.points...)
	b.audit = append(b.audit, o.audit...)
}

// emptied returns b's slices emptied, to fill again, or none when they
// grew larger than keepBuffers.
func (b batch) emptied() batch {
	if cap(b.events)+cap(b.points)+cap(b.audit) > keepBuffers {
		return batch{}
	}
	return batch{events: b.events[:0], points: b.points[:0], audit: b.audit[:0]}
}

// Recorder queues history records and writes them in batches. Make one
// with New; Close stops it.
type Recorder struct {
	cfg   Config
	store Store
	log   *slog.Logger
	m     metrics

	// mu guards pending, queued, sampler, status and closed. It is held for
	// memory work only, never across I/O: Record, Count and Audit, on the
	// gateway's loop, wait for nothing else.
	mu      sync.Mutex
	pending batch
	queued  int // records in pending and in held (bounded by MaxQueue)
	sampler *history.Sampler
	status  map[string]history.Kind // each board's last online or offline recorded
	closed  bool                    // no more records: the last flush has begun

	flushes   chan chan error // Flush's requests to the flusher
	quit      chan struct{}   // closed by Close: the flusher writes what is left and returns
	done      chan struct{}   // closed when the flusher has returned
	stopPrune context.CancelFunc
	pruneDone chan struct{} // closed when the pruner has returned
	closeOnce sync.Once
	closeErr  error // the last flush's error, set before done is closed

	// The flusher goroutine's own: only it touches them.
	held     batch     // a batch whose write failed: written first at the next flush
	spare    batch     // the last written batch's slices, emptied, for the next swap
	failures int       // writes failed since the last that worked
	loggedAt time.Time // when a failing write was last logged
}

// New makes a recorder writing to st and starts its flusher and pruner.
func New(cfg Config, st Store) (*Recorder, error) {
	if st == nil {
		return nil, errors.New("recorder: a Store is required")
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = DefaultFlushEvery
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.PruneEvery <= 0 {
		cfg.PruneEvery = DefaultPruneEvery
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = DefaultMaxQueue
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
	r := &Recorder{
		cfg:       cfg,
		store:     st,
		log:       cfg.Logger,
		sampler:   history.NewSampler(history.MinStep),
		flushes:   make(chan chan error),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
		pruneDone: make(chan struct{}),
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	status, err := st.LastOnline(ctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	r.status = status
	if err := r.m.register(cfg.Registerer, r.queueLen); err != nil {
		return nil, fmt.Errorf("recorder: metrics: %w", err)
	}
	pruneCtx, stopPrune := context.WithCancel(context.Background())
	r.stopPrune = stopPrune
	go r.flusher()        // ends when Close closes quit, after the last flush
	go r.pruner(pruneCtx) // ends when Close calls stopPrune
	return r, nil
}

// Record queues a board event. It never blocks; once the queue is full,
// or the recorder closed, the event is dropped and counted. An online or
// offline that repeats the board's last one (or an offline of a board
// never online) is dropped as saying nothing new: at start the broker
// marks every board offline, those offline already included; a board that
// takes its own session over says online again.
//
// A control plane that is not the primary (Config.Role) records only the
// commands; it still follows each board's online and offline, so that it
// does not record them again when it becomes the primary.
func (r *Recorder) Record(e history.Event) {
	if e.Kind == history.KindOnline || e.Kind == history.KindOffline {
		r.mu.Lock()
		last := r.status[e.Device]
		same := last == e.Kind || last == "" && e.Kind == history.KindOffline // never online: nothing ended
		r.status[e.Device] = e.Kind
		r.mu.Unlock()
		if same {
			return
		}
	}
	if e.Kind != history.KindCommand && !r.primary() {
		return // the primary records it
	}
	enqueue(r, &r.pending.events, e, r.m.droppedEvents)
}

// primary reports whether this control plane records the boards' history.
func (r *Recorder) primary() bool { return r.cfg.Role == nil || r.cfg.Role.Primary() }

// Audit queues an audit entry. It never blocks; once the queue is full,
// or the recorder closed, the entry is dropped and counted.
func (r *Recorder) Audit(e history.Entry) { enqueue(r, &r.pending.audit, e, r.m.droppedAudit) }

// enqueue appends v to q, a slice of r.pending, when the queue has room;
// otherwise it counts v in dropped.
func enqueue[T any](r *Recorder, q *[]T, v T, dropped prometheus.Counter) {
	r.mu.Lock()
	ok := r.admit()
	if ok {
		*q = append(*q, v)
	}
	r.mu.Unlock()
	if !ok {
		dropped.Inc()
	}
}

// Count takes a count board id sent at at: the sampler keeps the last one
// of each minute and queues it as a point once the minute is over (when
// the board's next minute begins, or at the first flush after). It never
// blocks; a point beyond the queue's bound is dropped and counted; counts
// after Close, and on a control plane that is not the primary, are
// ignored.
func (r *Recorder) Count(id string, n int64, at time.Time) {
	if !r.primary() {
		return
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	dropped := r.sample(func(pts []history.Point) []history.Point { return r.sampler.Observe(id, n, at, pts) })
	r.mu.Unlock()
	if dropped > 0 {
		r.m.droppedPoints.Add(float64(dropped))
	}
}

// sample appends the points f hands out to the queue, as many as its
// bound admits, and returns how many it dropped. mu is held.
func (r *Recorder) sample(f func([]history.Point) []history.Point) (dropped int) {
	before := len(r.pending.points)
	r.pending.points = f(r.pending.points)
	added := len(r.pending.points) - before
	room := max(0, r.cfg.MaxQueue-r.queued)
	if added > room {
		dropped = added - room
		added = room
		r.pending.points = r.pending.points[:before+added]
	}
	r.queued += added
	return dropped
}

// admit reports whether one more record fits in the queue, and counts it
// in when it does. mu is held.
func (r *Recorder) admit() bool {
	if r.closed || r.queued >= r.cfg.MaxQueue {
		return false
	}
	r.queued++
	return true
}

// queueLen is the number of records waiting to be written.
func (r *Recorder) queueLen() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.queued
}

// Flush writes what is queued now, the count points of the minutes that
// are over included, and returns the write's error; a batch that failed
// stays queued for the next flush. It waits for the flusher, which may be
// busy with a write; ctx bounds the wait.
func (r *Recorder) Flush(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case r.flushes <- reply:
	case <-r.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Prune deletes now the records older than Retention, as the pruner does
// every PruneEvery, and returns how many it deleted.
func (r *Recorder) Prune(ctx context.Context) (int64, error) {
	n, err := r.store.PruneHistory(ctx, r.cfg.Now().Add(-r.cfg.Retention))
	r.m.pruned.Add(float64(n))
	if err != nil {
		return n, fmt.Errorf("prune history: %w", err)
	}
	if n > 0 {
		r.log.Info("history pruned", "rows", n, "retention", r.cfg.Retention)
	}
	return n, nil
}

// Close stops the pruner, writes everything queued (the count of the
// minute not yet over included) and stops the flusher. It returns the last
// write's error; it may be called again, and answers the same.
func (r *Recorder) Close() error {
	r.closeOnce.Do(func() {
		r.stopPrune()
		<-r.pruneDone
		close(r.quit)
		<-r.done
	})
	return r.closeErr
}

// flusher writes the queue every FlushEvery and when Flush asks, until
// Close; then it writes what is left and returns.
func (r *Recorder) flusher() {
	defer close(r.done)
	tick := time.NewTicker(r.cfg.FlushEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			_ = r.flush(false) // logged by flush; retried at the next
		case reply := <-r.flushes:
			reply <- r.flush(false)
		case <-r.quit:
			err := r.flush(true)
			if err != nil && r.held.len() > 0 {
				err = r.flush(true) // once more: a lock or a connection may have come back
			}
			if n := r.held.len(); err != nil && n > 0 {
				r.log.Error("history lost at close: the last write failed", "records", n, "err", err)
			}
			r.closeErr = err
			return
		}
	}
}

// flush writes the batch held from a failed write, then the queue, in one
// transaction. With last, it closes the queue first and takes every count
// step, the unfinished ones included.
func (r *Recorder) flush(last bool) error {
	due := r.cfg.Now()
	if last {
		due = endOfTime
	}
	r.mu.Lock()
	dropped := r.sample(func(pts []history.Point) []history.Point { return r.sampler.Due(due, pts) })
	if last {
		r.closed = true
	}
	cur := r.pending
	r.pending, r.spare = r.spare, batch{}
	r.mu.Unlock()
	if dropped > 0 {
		r.m.droppedPoints.Add(float64(dropped))
	}

	b := cur
	if r.held.len() > 0 {
		b = r.held
		b.add(cur)
		r.held = batch{}
	}
	n := b.len()
	if n == 0 {
		r.spare = b.emptied()
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	start := time.Now()
	err := r.store.AppendHistory(ctx, b.events, b.points, b.audit)
	cancel()
	r.m.flushSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		r.held = b
		r.m.writeErrors.Inc()
		r.failed(err, n)
		return fmt.Errorf("write history: %w", err)
	}
	r.m.writtenEvents.Add(float64(len(b.events)))
	r.m.writtenPoints.Add(float64(len(b.points)))
	r.m.writtenAudit.Add(float64(len(b.audit)))
	r.mu.Lock()
	r.queued -= n
	r.mu.Unlock()
	if r.failures > 0 {
		r.log.Info("history writes work again", "failed", r.failures, "written", n)
		r.failures = 0
	}
	r.spare = b.emptied()
	return nil
}

// failed logs a failed write: the first of a run at once, then one line
// every errorLogEvery while they go on.
func (r *Recorder) failed(err error, records int) {
	r.failures++
	now := time.Now()
	if r.failures > 1 && now.Sub(r.loggedAt) < errorLogEvery {
		return
	}
	r.loggedAt = now
	r.log.Error("history write failed: retrying at the next flush", "records", records, "failures", r.failures, "err", err)
}

// pruner deletes the records older than Retention, first soon after New,
// then every PruneEvery, until ctx is cancelled.
func (r *Recorder) pruner(ctx context.Context) {
	defer close(r.pruneDone)
	t := time.NewTimer(min(firstPrune, r.cfg.PruneEvery))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !r.primary() {
			t.Reset(r.cfg.PruneEvery)
			continue // the primary prunes
		}
		if _, err := r.Prune(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("history prune failed: trying again later", "err", err)
		}
		t.Reset(r.cfg.PruneEvery)
	}
}
