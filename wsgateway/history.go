// History and audit: what the loop tells Config.History of each applied
// board message (with who caused it), and what the handlers tell
// Config.Audit of what people do.

package wsgateway

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"switchyard/auth"
	"switchyard/devices"
	"switchyard/history"
)

// Origin says who published a board message, as far as the MQTT side
// knows; the zero Origin is "unknown" (an external broker says nothing).
type Origin struct {
	Client   string // the publishing client's id; empty: the control plane itself, or unknown
	User     string // the name Client logged in with; empty: anonymous
	Will     bool   // the message is Client's Last Will
	Restored bool   // stored state delivered at start, not news
	// Retained: a retained message an external broker sent because a
	// subscription was made (after every connect, and once more a few
	// seconds later): dropped whole when the fleet already holds what it
	// says (devices.Fleet.Stale), so a replay makes no event, no history
	// and does not count as hearing from the board.
	Retained bool
}

// maxExternal bounds the MQTT commands remembered per board while they
// wait for the board's led.
const maxExternal = 16

// external is a led/set another MQTT client sent, waiting for the board's
// led to say who changed it.
type external struct {
	cmd devices.Command
	by  string
	at  time.Time
}

// requestActor is the actor of an API request (guardAPI identified it).
func requestActor(r *http.Request) string {
	id, _ := auth.FromContext(r.Context())
	return id.Actor()
}

// audit adds an entry to the audit log, when there is one.
func (g *Gateway) audit(who string, a history.Action, target string, res history.Result, remote string) {
	if g.cfg.Audit != nil {
		g.cfg.Audit.Audit(history.Entry{At: time.Now(), Actor: who, Action: a, Target: target, Result: res, Remote: remote})
	}
}

// auditGroup records a group or tag command of the API: ok when at least
// one board was commanded.
func (g *Gateway) auditGroup(r *http.Request, target string, res groupResult) {
	result := history.ResultOK
	if len(res.Commands) == 0 {
		result = history.ResultFailed
	}
	g.audit(requestActor(r), history.ActionCommand, target, result, r.RemoteAddr)
}

// auditResult is the audit result of a command's error.
func auditResult(err error) history.Result {
	switch {
	case err == nil:
		return history.ResultOK
	case errors.Is(err, errForbidden), errors.Is(err, errRateLimited):
		return history.ResultDenied
	}
	return history.ResultFailed
}

// commandDone records a tracked command's outcome in the history. It runs
// under the tracker's lock (see tracker.done).
func (g *Gateway) commandDone(c *command) {
	g.cfg.History.Record(history.Event{At: c.Updated, Device: c.Device, Kind: history.KindCommand,
		Value: c.Command.Payload() + " " + c.State, By: c.By})
}

// recordCommand remembers a led/set another MQTT client sent, to name it
// as the cause of the led that follows. The control plane's own (no
// client) are tracked commands already.
func (g *Gateway) recordCommand(m *inMsg) {
	if m.from.Client == "" || !g.fleet.Known(m.id) {
		return
	}
	cmd, err := devices.ParseCommand(m.payload)
	if err != nil {
		return // the board ignores it too
	}
	q := g.external[m.id]
	if len(q) >= maxExternal {
		q = q[1:]
	}
	g.external[m.id] = append(q, external{cmd: cmd, by: history.ByMQTT(m.from.User, m.from.Client), at: m.at})
}

// expireCommands records MQTT commands the board never answered.
func (g *Gateway) expireCommands(now time.Time) {
	for id, q := range g.external {
		keep := q[:0]
		for _, e := range q {
			if now.Sub(e.at) >= g.cfg.CommandTimeout {
				g.cfg.History.Record(history.Event{At: now, Device: id, Kind: history.KindCommand,
					Value: e.cmd.Payload() + " " + stateTimeout, By: e.by})
			} else {
				keep = append(keep, e)
			}
		}
		if len(keep) == 0 {
			delete(g.external, id)
		} else {
			g.external[id] = keep
		}
	}
}

// confirmExternal records the MQTT commands the led in m answers and
// returns who sent the last of them ("" if none).
func (g *Gateway) confirmExternal(m *inMsg) (by string) {
	for _, e := range g.external[m.id] {
		g.cfg.History.Record(history.Event{At: m.at, Device: m.id, Kind: history.KindCommand,
			Value: e.cmd.Payload() + " " + stateApplied, By: e.by})
		by = e.by
	}
	delete(g.external, m.id)
	return by
}

// record tells the history what applying m changed: before is the board
// as it was (known says whether it was), by who caused a led change
// through a tracked command ("" if none). It runs on the loop under mu.
func (g *Gateway) record(m *inMsg, before devices.Device, known bool, by string) {
	h := g.cfg.History
	after, ok := g.fleet.Get(m.id)
	if !ok {
		return
	}
	ev := history.Event{At: m.at, Device: m.id}
	rec := func(k history.Kind, value, by string) {
		ev.Kind, ev.Value, ev.By = k, value, by
		h.Record(ev)
	}
	wasOnline := known && before.Online
	switch {
	case after.Online && !wasOnline:
		rec(history.KindOnline, "", history.ByBoard)
	case !after.Online && m.from.Restored && m.kind == devices.KindStatus:
		// The broker marked every board offline at start: those online
		// when the control plane stopped went offline then. (The history
		// drops it for a board already offline.)
		ev.At = time.Now()
		rec(history.KindOffline, history.OfflineRestart, "")
	case !after.Online && wasOnline:
		switch {
		case m.from.Will:
			rec(history.KindOffline, history.OfflineWill, "")
		case m.from.Client == m.id:
			rec(history.KindOffline, history.OfflineClean, history.ByBoard)
		case m.from.Client != "":
			rec(history.KindOffline, history.OfflineClean, history.ByMQTT(m.from.User, m.from.Client))
		default: // an external broker does not say
			rec(history.KindOffline, "", "")
		}
	}
	if m.from.Restored {
		return // the state before the restart, recorded then
	}
	switch m.kind {
	case devices.KindLED:
		if ext := g.confirmExternal(m); by == "" {
			by = ext
		}
		if !before.HasLED || before.LEDOn != after.LEDOn {
			if by == "" {
				by = history.ByBoard
			}
			rec(history.KindLED, devices.LEDPayload(after.LEDOn), by)
		}
	case devices.KindInfo:
		var changed []string
		if f := after.Info.Firmware; f != "" && f != before.Info.Firmware {
			changed = append(changed, "firmware "+f)
		}
		if p := after.Info.Platform; p != "" && p != before.Info.Platform {
			changed = append(changed, "platform "+p)
		}
		if len(changed) > 0 {
			rec(history.KindInfo, strings.Join(changed, ", "), history.ByBoard)
		}
	case devices.KindUpdate:
		u := after.Update
		if before.HasUpdate && before.Update.State == u.State && before.Update.Version == u.Version && before.Update.Error == u.Error {
			return // progress only
		}
		v := string(u.State)
		if u.Version != "" {
			v += " " + u.Version
		}
		if u.Error != "" {
			v += ": " + u.Error
		}
		rec(history.KindUpdate, v, history.ByBoard)
	}
}
