// Onboarding at run time: boards declared by an admin (Declare), "new"
// boards (Config.Adopted) and what runs before a board is forgotten
// (Config.Forgetting).

package wsgateway

import (
	"context"
	"fmt"

	"switchyard/devices"
)

// Declare makes board id known at run time, offline until it first
// connects, as Config.Declared does at start: a board an admin has just
// created shows at once, waiting for its first connection. When name is
// not "" or tags is not nil it also sets the board's name and tags, as a
// PATCH of them would (saved through Config.Meta first); otherwise what
// was given the board before stays. A board already known keeps its
// state. A bad id, name or tag, or a full fleet, is an error and changes
// nothing.
func (g *Gateway) Declare(id, name string, tags []string) error {
	if err := devices.ValidateID(id); err != nil {
		return fmt.Errorf("declare %s: %w", id, err)
	}
	setMeta := name != "" || tags != nil
	if setMeta {
		if err := devices.ValidateName(name); err != nil {
			return fmt.Errorf("declare %s: name: %w", id, err)
		}
		var err error
		if tags != nil {
			if tags, err = devices.NormalizeTags(tags); err != nil {
				return fmt.Errorf("declare %s: tags: %w", id, err)
			}
		}
	}
	// As in patchDevice: one change of a board's meta at a time, saved in
	// the order they apply.
	g.patchMu.Lock()
	defer g.patchMu.Unlock()
	var m devices.Meta
	if setMeta {
		g.mu.RLock()
		m = g.fleet.Meta(id)
		g.mu.RUnlock()
		if name != "" {
			m.Name = name
		}
		if tags != nil {
			m.Tags, m.HasTags = tags, true
		}
		if ms := g.cfg.Meta; ms != nil {
			if err := ms.SaveDeviceMeta(context.Background(), m); err != nil {
				return fmt.Errorf("declare %s: %w", id, err)
			}
		}
	}
	var opErr error
	err := g.runOnLoop(func() {
		var evs []devices.Event
		if setMeta {
			if evs, opErr = g.fleet.SetMeta(m, nil); opErr != nil {
				return // checked above: not expected
			}
		}
		var added bool
		if evs, added, opErr = g.fleet.Declare(id, evs); opErr != nil {
			return
		}
		g.fanOut(evs)
		if obs := g.cfg.Observer; obs != nil && (added || setMeta) {
			if d, ok := g.fleet.Get(id); ok {
				obs.DeviceChanged(d)
			}
		}
	})
	if err == nil {
		err = opErr
	}
	if err != nil {
		return fmt.Errorf("declare %s: %w", id, err)
	}
	return nil
}

// Online reports whether board id is known and online.
func (g *Gateway) Online(id string) bool {
	d, ok := g.device(id)
	return ok && d.Online
}

// isNew reports whether known board d is "new": it connected, but is
// neither declared in config nor adopted (Config.Adopted).
func (g *Gateway) isNew(d *devices.Device) bool {
	return g.cfg.Adopted != nil && !g.declared[d.ID] && !g.cfg.Adopted(d.ID)
}
