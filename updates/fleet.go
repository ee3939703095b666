package updates

import (
	"slices"
	"strings"
	"sync"
	"time"

	"switchyard/devices"
	"switchyard/rollout"
)

// fleetView is what the service knows of every board, from the board
// messages Ingest is given: enough for rollout.View and rollout.Candidate.
// It is the service's own rather than the gateway's devices.Fleet, so that
// the gateway's loop never waits for a rollout and a rollout reads the
// boards without a round trip to another goroutine.
type fleetView struct {
	topics devices.Topics
	start  time.Time // boards first heard of count as offline from here

	mu     sync.Mutex // guards boards and what they point to
	boards map[string]*boardView
}

// boardView is one board.
type boardView struct {
	known     bool // heard status, led, count or info (an update report alone makes no board known)
	hasStatus bool
	online    bool
	since     time.Time // when online last changed (or the board was first heard of)

	firmware, platform, method string // from info

	hasReport bool
	report    rollout.ReportView

	hasCount  bool
	count     int64
	lastCount time.Time // when count last changed
}

func newFleetView(topics devices.Topics, start time.Time) *fleetView {
	return &fleetView{topics: topics, start: start, boards: map[string]*boardView{}}
}

// Ingest takes one board message (every P/+/+ message, retained ones
// included): it must be called for them in the order they arrive. It
// never blocks: it updates the service's view of the board under a short
// lock and wakes the engine when something a rollout reads changed. The
// count messages, every second from every board, take no allocation.
func (s *Service) Ingest(topic string, payload []byte) {
	if s.fleet.apply(topic, payload, s.cfg.Now()) {
		s.poke()
	}
}

// apply records one message; it reports whether a rollout could see the
// change (a count does not wake the engine: the ticker reads it).
func (f *fleetView) apply(topic string, payload []byte, now time.Time) (wake bool) {
	id, k, ok := f.topics.Parse(topic)
	if !ok {
		return false
	}
	if !k.FromBoard() {
		return false // commands
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.boards[id]
	if len(payload) == 0 { // a cleared retained message
		if k == devices.KindStatus && b != nil { // the board was forgotten
			delete(f.boards, id)
			return true
		}
		return false
	}
	if b == nil {
		b = &boardView{since: now}
		f.boards[strings.Clone(id)] = b // id is part of topic, which may be the broker's
	}
	switch k {
	case devices.KindStatus:
		on, err := devices.ParseStatus(payload)
		if err != nil {
			return false
		}
		b.known, b.hasStatus = true, true
		return b.setOnline(on, now)
	case devices.KindLED:
		b.known = true
		return false
	case devices.KindCount:
		n, err := devices.ParseCount(payload)
		if err != nil {
			return false
		}
		b.known = true
		if !b.hasCount || n != b.count {
			b.hasCount, b.count, b.lastCount = true, n, now
		}
		// A count comes only from a connected board (it is never
		// retained): a board whose status is unknown is online.
		return !b.hasStatus && b.setOnline(true, now)
	case devices.KindInfo:
		info, err := devices.ParseInfo(payload)
		if err != nil {
			return false
		}
		b.known = true
		wake = b.firmware != info.Firmware || b.platform != info.Platform || b.method != info.Update
		b.firmware, b.platform, b.method = info.Firmware, info.Platform, info.Update
		return wake
	case devices.KindUpdate:
		r, err := devices.ParseUpdateReport(payload)
		if err != nil {
			return false
		}
		b.hasReport = true
		b.report = rollout.ReportView{Job: r.Job, State: string(r.State), Version: r.Version, Running: r.Running, Error: r.Error}
		return true
	}
	return false
}

func (b *boardView) setOnline(on bool, now time.Time) (changed bool) {
	if b.online == on {
		return false
	}
	b.online, b.since = on, now
	return true
}

// View is rollout.Fleet's: what is known of board id now.
func (f *fleetView) View(id string) rollout.View {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.boards[id]
	if b == nil {
		return rollout.View{Since: f.start}
	}
	return rollout.View{
		Known: b.known, Online: b.online, Firmware: b.firmware,
		HasReport: b.hasReport, Report: b.report,
		Since: b.since, LastCount: b.lastCount,
	}
}

// candidates describes the boards ids for rollout.Plan.
func (f *fleetView) candidates(ids []string) []rollout.Candidate {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]rollout.Candidate, len(ids))
	for i, id := range ids {
		out[i] = rollout.Candidate{ID: id}
		if b := f.boards[id]; b != nil {
			out[i] = rollout.Candidate{
				ID: id, Platform: b.platform, Method: b.method, Firmware: b.firmware,
				Running: b.report.Running, Online: b.online,
			}
		}
	}
	return out
}

// known returns the ids of every known board, sorted.
func (f *fleetView) known() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, 0, len(f.boards))
	for id, b := range f.boards {
		if b.known {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}
