// Commands: led/set for one board, a group or the boards with a tag, from
// a browser's message or the API, checked, rate limited and published.

package wsgateway

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"switchyard/devices"
	"switchyard/history"
)

// Errors of a command.
var (
	errUnknownDevice = errors.New("unknown device")
	errOffline       = errors.New("device is offline")
	errForbidden     = errors.New("forbidden")
	errRateLimited   = errors.New("too many commands")
	errClosed        = errors.New("gateway closed")
)

// command publishes cmd to the board id after checking the board is known
// and online, and tracks it until the board confirms. A command to an
// offline board is tracked as offline and not published. by is who sends
// it (see actor).
func (g *Gateway) command(id string, cmd devices.Command, by string) (command, error) {
	g.mu.RLock()
	d, ok := g.fleet.Get(id)
	closed := g.closed
	g.mu.RUnlock()
	switch {
	case closed:
		return command{}, errClosed
	case !ok:
		return command{}, fmt.Errorf("%w %q", errUnknownDevice, id)
	case !d.Online:
		return g.cmds.add(id, cmd, stateOffline, by, time.Now()), fmt.Errorf("%w: %s", errOffline, id)
	}
	// Tracked and announced before it is published, so that the board's
	// confirmation, queued after it, is always seen after "pending".
	c := g.cmds.add(id, cmd, statePending, by, time.Now())
	g.postEvent(c.event())
	if err := g.bus.Publish(g.topics.LEDSet(id), []byte(cmd.Payload()), false, 1); err != nil {
		return command{}, fmt.Errorf("command %s to %s: %w", cmd, id, err) // it will time out
	}
	g.m.commands.Inc()
	return c, nil
}

// groupResult answers a command to several boards (a group or a tag): a
// command per board, and why the others were skipped.
type groupResult struct {
	Group    string            `json:"group,omitempty"`
	Tag      string            `json:"tag,omitempty"`
	Commands []commandJSON     `json:"commands"`
	Skipped  map[string]string `json:"skipped"`
}

// commandGroup sends cmd to every board of ids (a group's members or the
// boards with a tag) as by; each gets its own led/set and its own tracked
// command.
func (g *Gateway) commandGroup(ids []string, cmd devices.Command, by string) groupResult {
	res := groupResult{Commands: []commandJSON{}, Skipped: map[string]string{}}
	for _, id := range ids {
		c, err := g.command(id, cmd, by)
		if err != nil {
			res.Skipped[id] = err.Error()
			continue
		}
		res.Commands = append(res.Commands, toCommandJSON(&c))
	}
	return res
}

// allGroup names every known board.
const allGroup = "all"

// groupMembers returns the ids of a group, sorted ("all": every known board).
func (g *Gateway) groupMembers(name string) []string {
	if name == allGroup {
		g.mu.RLock()
		defer g.mu.RUnlock()
		var ids []string
		for _, d := range g.fleet.Snapshot(nil) {
			ids = append(ids, d.ID)
		}
		return ids
	}
	ids := append([]string(nil), g.cfg.Groups[name]...)
	slices.Sort(ids)
	return ids
}

// handle answers one browser message: a command, or an error event.
func (c *client) handle(data []byte) {
	var t devices.Target
	var cmd devices.Command
	var err error
	if c.device == "" {
		t, cmd, err = devices.ParseBrowserMessage(data)
	} else {
		t.Device = c.device
		cmd, err = devices.ParseAction(string(data))
	}
	switch {
	case err != nil:
	case !c.id.CanCommand():
		err = fmt.Errorf("%w: role %s may watch but not command", errForbidden, c.id.Role)
	case !c.allowCommand(time.Now()):
		err = fmt.Errorf("%w: at most %g a second", errRateLimited, c.g.cfg.CommandRate)
	case t.Device == "":
		err = c.groupCommand(t, cmd)
	default:
		_, err = c.g.command(t.Device, cmd, c.id.Actor())
	}
	if err == nil || !errors.Is(err, devices.ErrBadMessage) {
		target := t.Device
		switch {
		case t.Group != "":
			target = "group:" + t.Group
		case t.Tag != "":
			target = "tag:" + t.Tag
		}
		c.g.audit(c.id.Actor(), history.ActionCommand, target, auditResult(err), c.remote)
	}
	if err != nil {
		c.g.m.refused.Inc()
		ev := devices.ErrorEvent(t.Device, err)
		if c.device != "" {
			c.enqueue(ev.AppendSingle(nil), 1)
		} else {
			c.enqueue(ev.AppendJSON(nil), 1)
		}
	}
}

// groupCommand switches a group of boards, or the boards with a tag;
// boards that cannot be switched are reported in one error event.
func (c *client) groupCommand(t devices.Target, cmd devices.Command) error {
	var ids []string
	var what string
	if t.Group != "" {
		if _, ok := c.g.cfg.Groups[t.Group]; !ok && t.Group != allGroup {
			return fmt.Errorf("%w: unknown group %q", devices.ErrBadMessage, t.Group)
		}
		ids, what = c.g.groupMembers(t.Group), "group "+t.Group
	} else {
		if ids = c.g.Tagged(t.Tag); len(ids) == 0 {
			return fmt.Errorf("%w: no board has tag %q", devices.ErrBadMessage, t.Tag)
		}
		what = "tag " + t.Tag
	}
	res := c.g.commandGroup(ids, cmd, c.id.Actor())
	if len(res.Skipped) == 0 {
		return nil
	}
	skipped := make([]string, 0, len(res.Skipped))
	for id := range res.Skipped {
		skipped = append(skipped, id)
	}
	slices.Sort(skipped)
	return fmt.Errorf("%s: %d of %d boards not switched (offline or unknown): %s",
		what, len(skipped), len(skipped)+len(res.Commands), strings.Join(skipped, ", "))
}

// allowCommand reports whether the browser may send one more command at
// now: Config.CommandRate a second, in bursts of Config.CommandBurst. The
// limiter is made at the first command, so a browser that only watches
// holds none. Only c's reader calls it.
func (c *client) allowCommand(now time.Time) bool {
	if c.limiter == nil {
		c.limiter = rate.NewLimiter(rate.Limit(c.g.cfg.CommandRate), c.g.cfg.CommandBurst)
	}
	return c.limiter.AllowN(now, 1)
}
