// Command tracking: a command is followed from published to applied or
// timed out, for the browsers' command events and GET /api/commands/<id>.

package wsgateway

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"switchyard/devices"
)

// Command states: a command is pending from when it is published until the
// board's led confirms it (applied) or CommandTimeout passes (timeout); a
// command to an offline board is not published (offline).
const (
	statePending = "pending"
	stateApplied = "applied"
	stateTimeout = "timeout"
	stateOffline = "offline"
)

// maxTracked bounds the commands remembered for GET /api/commands/<id>.
const maxTracked = 10000

// command is one tracked command.
type command struct {
	ID      string
	Device  string
	Command devices.Command
	State   string
	Created time.Time
	Updated time.Time
	By      string // who sent it (see actor)
}

func (c *command) event() devices.Event {
	return devices.Event{Device: c.Device, Label: devices.LabelCommand, CommandID: c.ID, Command: c.Command, Message: c.State}
}

// tracker follows commands until the board confirms them. Its methods are
// safe for concurrent use; they return the events to broadcast.
type tracker struct {
	timeout time.Duration
	// done, when set, hears of each command that reached its final state
	// (applied, timeout or offline), under mu: it must not block.
	done func(c *command)

	mu      sync.Mutex            // guards the rest
	byID    map[string]*command   // every remembered command
	order   []string              // ids, oldest first, to forget beyond maxTracked
	pending map[string][]*command // device → its pending commands
}

func newTracker(timeout time.Duration) *tracker {
	return &tracker{timeout: timeout, byID: map[string]*command{}, pending: map[string][]*command{}}
}

func newCommandID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// add records a command in state (pending or offline).
func (t *tracker) add(device string, cmd devices.Command, state, by string, now time.Time) command {
	c := &command{ID: newCommandID(), Device: device, Command: cmd, State: state, Created: now, Updated: now, By: by}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.byID[c.ID] = c
	t.order = append(t.order, c.ID)
	if len(t.order) > maxTracked {
		old := t.order[0]
		t.order = t.order[1:]
		delete(t.byID, old) // a pending one also leaves pending at its timeout
	}
	if state == statePending {
		t.pending[device] = append(t.pending[device], c)
	} else if t.done != nil {
		t.done(c)
	}
	return *c
}

// confirm marks every pending command of device applied: its led state
// arrived after them. by is who sent the last of them ("" if none was
// pending): who caused the state.
func (t *tracker) confirm(device string, now time.Time, evs []devices.Event) (_ []devices.Event, by string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.pending[device] {
		c.State, c.Updated = stateApplied, now
		evs = append(evs, c.event())
		by = c.By
		if t.done != nil {
			t.done(c)
		}
	}
	delete(t.pending, device)
	return evs, by
}

// expire times out pending commands older than the timeout.
func (t *tracker) expire(now time.Time, evs []devices.Event) []devices.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	for dev, cs := range t.pending {
		keep := cs[:0]
		for _, c := range cs {
			if now.Sub(c.Created) >= t.timeout {
				c.State, c.Updated = stateTimeout, now
				evs = append(evs, c.event())
				if t.done != nil {
					t.done(c)
				}
			} else {
				keep = append(keep, c)
			}
		}
		if len(keep) == 0 {
			delete(t.pending, dev)
		} else {
			t.pending[dev] = keep
		}
	}
	return evs
}

// get returns a copy of a command.
func (t *tracker) get(id string) (command, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.byID[id]
	if !ok {
		return command{}, false
	}
	return *c, true
}
