// The loop: the one goroutine that changes the fleet. It takes the ingest
// queue in batches (counts coalesced), applies them and fans the events
// out; forget runs on it too.

package wsgateway

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"switchyard/devices"
	"switchyard/history"
)

// Coalescing of counts. Every fan-out costs one frame write (a system
// call, 5-30 µs on loopback) per browser, whatever it carries, so with
// many browsers the write calls, not the events, bound the gateway: 1,000
// browsers and 100 boards counting at 1 Hz are 100,000 writes a second,
// a full core. So when only counts are waiting, the loop waits until
// Config.CoalescePerBrowser × browsers (at most Config.CoalesceMax) has
// passed since its last fan-out and sends them together: a few events per
// frame, a fraction of the writes (bench/README.md has the figures).
// Update reports (a download's progress) wait the same way. Anything else
// (state, status, info, an operation) goes out at once, with the counts
// queued before it. A quiet gateway, or one with few browsers,
// adds no delay: the gap is 0.1 ms for 5 browsers, 2 ms for 100, 20 ms for
// 1,000.
// countGap returns how long after a fan-out counts alone wait.
func (g *Gateway) countGap() time.Duration {
	return min(g.cfg.CoalesceMax, time.Duration(g.nBrowser.Load())*g.cfg.CoalescePerBrowser)
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
			evs = g.cmds.expire(now, evs[:0])
			silence := g.cfg.SilenceGrace > 0 && g.hearing(now)
			if len(evs) > 0 || len(g.external) > 0 || silence {
				g.mu.Lock()
				if silence {
					evs = g.markSilent(now, evs)
				}
				g.fanOut(evs)
				g.expireCommands(now)
				g.m.setFleet(g.fleet.Len(), g.fleet.OnlineCount())
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
			if m.raw != nil {
				g.fanOut(evs) // keep order, as for an op
				evs = evs[:0]
				g.fanOutRaw(m.raw)
				continue
			}
			if m.bad != nil {
				g.m.ignored.Inc()
				g.badLog.log(g.log, "ignored a board message", "topic", m.topic, "err", m.bad)
				continue
			}
			id, k := m.id, m.kind
			if m.from.Retained && g.fleet.Stale(id, k, m.payload) {
				continue // a broker's replay of what the fleet holds
			}
			if k == devices.KindLEDSet { // another client's command (only with a history)
				g.recordCommand(m)
				continue
			}
			hist := g.cfg.History != nil && k != devices.KindCount
			var before devices.Device
			var wasKnown bool
			if hist {
				before, wasKnown = g.fleet.Get(id)
			} else {
				wasKnown = g.fleet.Known(id)
			}
			n := len(evs)
			var err error
			evs, err = g.fleet.Apply(id, k, m.payload, m.at, evs)
			if err != nil {
				g.m.ignored.Inc()
				g.badLog.log(g.log, "ignored a board message", "topic", m.topic, "err", err)
				continue
			}
			var by string
			if k == devices.KindLED && len(m.payload) > 0 { // not a cleared retained led: the board said nothing
				evs, by = g.cmds.confirm(id, m.at, evs)
			}
			// A count brings an offline board back online (Fleet.Apply: a
			// silent board, or a stale offline; its online event is among
			// the ones it appended): recorded here, as record (which sees
			// every other kind) does not see counts.
			if k == devices.KindCount && g.cfg.History != nil && wasKnown && cameOnline(evs[n:]) {
				g.cfg.History.Record(history.Event{At: m.at, Device: id, Kind: history.KindOnline, By: history.ByBoard})
			}
			if hist {
				g.record(m, before, wasKnown, by)
			} else if k == devices.KindCount && g.cfg.History != nil && len(m.payload) > 0 {
				// Apply parsed it: its count event is the last appended
				// (an empty payload appends none).
				g.cfg.History.Count(id, evs[len(evs)-1].Count, m.at)
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

// cameOnline reports whether evs hold a board's going online.
func cameOnline(evs []devices.Event) bool {
	for _, ev := range evs {
		if ev.Label == devices.LabelOnline && ev.On {
			return true
		}
	}
	return false
}

// hearing reports whether the MQTT side is healthy at now, keeping
// g.listening: since when it has been. It runs on the loop.
func (g *Gateway) hearing(now time.Time) bool {
	if g.cfg.Health != nil && g.cfg.Health() != nil {
		g.listening = time.Time{}
		return false
	}
	if g.listening.IsZero() {
		g.listening = now
	}
	return true
}

// markSilent marks offline the boards quiet too long (Config.SilenceGrace)
// and records why; it runs on the loop under mu.
func (g *Gateway) markSilent(now time.Time, evs []devices.Event) []devices.Event {
	rule := devices.Silence{Grace: g.cfg.SilenceGrace, Intervals: g.cfg.SilenceIntervals}
	n := len(evs)
	evs = g.fleet.MarkSilent(rule, now, g.listening, evs)
	if len(evs) == n {
		return evs
	}
	var ids []string
	for _, ev := range evs[n:] {
		if len(ids) < 10 {
			ids = append(ids, ev.Device)
		}
		if g.cfg.History != nil {
			g.cfg.History.Record(history.Event{At: now, Device: ev.Device, Kind: history.KindOffline, Value: history.OfflineSilent})
		}
	}
	g.log.Info("boards silent: marked offline", "count", len(evs)-n, "devices", strings.Join(ids, ","))
	return evs
}

// forget clears a board's retained topics and removes it from the fleet and
// every browser; by is who asked (see actor).
func (g *Gateway) forget(id, by string) error {
	if _, ok := g.device(id); !ok {
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
		// Recorded whether the fleet forgot it here or already when the
		// cleared status came through (Fleet.Apply).
		delete(g.external, id)
		if g.cfg.History != nil {
			g.cfg.History.Record(history.Event{At: time.Now(), Device: id, Kind: history.KindForgotten, By: by})
		}
	})
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
