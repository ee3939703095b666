// Fan-out: a batch of events, encoded once, queued to every browser.

package wsgateway

import "switchyard/devices"

// fanOut sends evs to every browser. Caller holds mu.
func (g *Gateway) fanOut(evs []devices.Event) {
	if len(evs) == 0 {
		return
	}
	g.snapOK = false // every event changes the fleet (command events too: harmless)
	g.m.broadcast.Add(float64(len(evs)))
	if len(g.clients) > 0 {
		var chunk []byte
		for i, ev := range evs {
			if i > 0 {
				chunk = append(chunk, ',')
			}
			chunk = ev.AppendJSON(chunk)
		}
		for c := range g.clients {
			c.enqueue(chunk, len(evs))
		}
	}
	if len(g.single) > 0 {
		for _, ev := range evs {
			subs := g.single[ev.Device]
			if len(subs) == 0 || !ev.SingleBoard() {
				continue
			}
			frame := ev.AppendSingle(nil)
			for c := range subs {
				c.enqueue(frame, 1)
			}
		}
	}
	for _, ev := range evs {
		if ev.Label != devices.LabelRemoved {
			continue
		}
		if obs := g.cfg.Observer; obs != nil {
			obs.DeviceRemoved(ev.Device)
		}
		for c := range g.single[ev.Device] {
			c.close(websocketGoingAway, "device removed")
		}
	}
}
