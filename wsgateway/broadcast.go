// Broadcast: events of other packages (the update service's rollouts) for
// every /ws browser, live and in the connect snapshot.

package wsgateway

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Broadcast sends event, one JSON object ({"event":"rollout",…}), to every
// /ws browser; /ws/<id> browsers, whose dialect is the seed tutorial's, do
// not get it. It goes the way the fleet's events go, in order with them:
// queued for the loop, encoded once, added to each browser's queue, so a
// slow browser never holds it up (it is dropped, as for any event, when
// its queue overflows) and a healthy browser gets every event. Broadcast
// copies event and never blocks; it is safe for concurrent use. An event
// that is not one JSON object is logged and dropped (in an array frame it
// would spoil its neighbours for the browser); after Close nothing is
// sent.
func (g *Gateway) Broadcast(event []byte) {
	if err := checkEvent(event); err != nil {
		g.badLog.log(g.log, "broadcast refused", "err", err)
		return
	}
	select {
	case <-g.stop:
		return
	default:
	}
	g.post(inMsg{raw: prepare(event)}) // copied into its frames
}

// fanOutRaw queues one broadcast's frame to every /ws browser. Caller
// holds mu.
func (g *Gateway) fanOutRaw(p *prepared) {
	g.m.broadcast.Inc()
	for c := range g.clients {
		c.enqueueFrame(p)
	}
}

// sendSnapshot queues Config.Snapshot's events to c, a /ws browser just
// registered (see Config.Snapshot for why not under mu). They count, like
// the fleet's snapshot, beyond c's queue limit.
func (g *Gateway) sendSnapshot(c *client) {
	if g.cfg.Snapshot == nil || c.device != "" {
		return
	}
	var evs [][]byte
	n := 0
	for _, ev := range g.cfg.Snapshot() {
		if err := checkEvent(ev); err != nil {
			g.badLog.log(g.log, "snapshot event refused", "err", err)
			continue
		}
		evs = append(evs, bytes.Clone(ev)) // the caller may reuse its buffers
		n += len(ev)
	}
	if len(evs) == 0 {
		return
	}
	c.mu.Lock()
	c.limit += n
	c.mu.Unlock()
	for _, ev := range evs {
		c.enqueue(ev, 1)
	}
}

var errNotObject = errors.New("not a JSON object")

// checkEvent reports whether ev is one JSON object.
func checkEvent(ev []byte) error {
	t := bytes.TrimSpace(ev)
	if len(t) == 0 || t[0] != '{' || !json.Valid(t) {
		return errNotObject
	}
	return nil
}
