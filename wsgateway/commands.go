// Commands: led/set for one board or a group, from a browser's message
// or the API, checked, rate limited and published.

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

// groupResult answers a group command: a command per board, and why the
// others were skipped.
type groupResult struct {
	Group    string            `json:"group"`
	Commands []commandJSON     `json:"commands"`
	Skipped  map[string]string `json:"skipped"`
}

// commandGroup sends cmd to every board of a group; each gets its own
// led/set and its own tracked command.
func (g *Gateway) commandGroup(name string, cmd devices.Command, by string) groupResult {
	res := groupResult{Group: name, Commands: []commandJSON{}, Skipped: map[string]string{}}
	for _, id := range g.groupMembers(name) {
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
	var id, group string
	var cmd devices.Command
	var err error
	if c.device == "" {
		id, group, cmd, err = devices.ParseBrowserMessage(data)
	} else {
		id = c.device
		cmd, err = devices.ParseAction(string(data))
	}
	switch {
	case err != nil:
	case !c.id.CanCommand():
		err = fmt.Errorf("%w: role %s may watch but not command", errForbidden, c.id.Role)
	case !c.allowCommand(time.Now()):
		err = fmt.Errorf("%w: at most %g a second", errRateLimited, c.g.cfg.CommandRate)
	case group != "":
		err = c.groupCommand(group, cmd)
	default:
		_, err = c.g.command(id, cmd, actor(c.id))
	}
	if err == nil || !errors.Is(err, devices.ErrBadMessage) {
		target := id
		if group != "" {
			target = "group:" + group
		}
		c.g.audit(actor(c.id), history.ActionCommand, target, auditResult(err), c.remote)
	}
	if err != nil {
		c.g.m.refused.Inc()
		ev := devices.ErrorEvent(id, err)
		if c.device != "" {
			c.enqueue(ev.AppendSingle(nil), 1)
		} else {
			c.enqueue(ev.AppendJSON(nil), 1)
		}
	}
}

// groupCommand switches a group of boards; boards that cannot be switched
// are reported in one error event.
func (c *client) groupCommand(group string, cmd devices.Command) error {
	if _, ok := c.g.cfg.Groups[group]; !ok && group != allGroup {
		return fmt.Errorf("%w: unknown group %q", devices.ErrBadMessage, group)
	}
	res := c.g.commandGroup(group, cmd, actor(c.id))
	if len(res.Skipped) == 0 {
		return nil
	}
	ids := make([]string, 0, len(res.Skipped))
	for id := range res.Skipped {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return fmt.Errorf("group %s: %d of %d boards not switched (offline or unknown): %s",
		group, len(ids), len(ids)+len(res.Commands), strings.Join(ids, ", "))
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
