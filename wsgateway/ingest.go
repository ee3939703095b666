// The ingest queue: board messages, posted events and loop operations
// wait here for the loop, queued without blocking.

package wsgateway

import (
	"time"

	"switchyard/devices"
)

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
	from    Origin
	op      func()         // when set, run under mu in order with the messages
	ev      *devices.Event // when set, an event to broadcast in order with the messages' (see postEvent)
	raw     *prepared      // when set, a broadcast's frames for every /ws browser (see Broadcast)
	bad     error          // when set, a board topic with an invalid id: logged and counted, nothing else
}

// Ingest queues a message a board published, from an unknown origin (see
// IngestFrom).
func (g *Gateway) Ingest(topic string, payload []byte, at time.Time) {
	g.IngestFrom(topic, payload, at, Origin{})
}

// IngestFrom queues a message published on a board's topic, with who
// published it: a board's own topics, and, for the history, the led/set
// commands of other MQTT clients. It copies payload, never blocks and is
// safe for concurrent use: call it from the broker's inline subscription.
func (g *Gateway) IngestFrom(topic string, payload []byte, at time.Time, from Origin) {
	id, k, ok := g.topics.Parse(topic)
	var bad error
	if !ok {
		// A board's topic with an invalid id is ignored too, but with a
		// clear error (logged by the loop: nothing here may block).
		if bad = g.topics.CheckID(topic); bad == nil {
			return // not a board topic of this prefix: nothing to apply
		}
	}
	if k == devices.KindLEDSet && (g.cfg.History == nil || from.Client == "") {
		return // only the history wants other clients' commands
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
		g.inQ = append(g.inQ, inMsg{topic: topic, id: id, kind: k, payload: append([]byte(nil), payload...), at: at, from: from})
	}
	// A command waits for its board's answer, and an update report is a
	// download's progress (four a second from each downloading board):
	// no hurry either.
	if !droppable && k != devices.KindLEDSet && k != devices.KindUpdate {
		g.inUrgent = true
	}
	g.inMu.Unlock()
	g.kick()
}

func (g *Gateway) kick() {
	select {
	case g.inKick <- struct{}{}:
	default:
	}
}

// postEvent broadcasts ev in order with the queued messages, in the same
// frame as the events of the batch it falls in. It does not hurry the loop:
// ev waits up to countGap, even on a quiet gateway, unless something
// urgent comes first. So a command's pending event, posted just before the
// command is published, usually goes out in one frame with the board's
// confirmation instead of costing a fan-out of its own.
func (g *Gateway) postEvent(ev devices.Event) { g.post(inMsg{ev: &ev}) }

// post queues m, an event to broadcast, as postEvent says.
func (g *Gateway) post(m inMsg) {
	g.inMu.Lock()
	g.inQ = append(g.inQ, m)
	if g.inNotBefore.IsZero() {
		g.inNotBefore = time.Now().Add(g.countGap())
	}
	g.inMu.Unlock()
	g.kick()
}
