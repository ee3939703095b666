package devices

import (
	"fmt"
	"sort"
	"time"
)

// Device is what the control plane knows of one board.
type Device struct {
	ID         string
	ConfigName string   // name declared in config, may be empty
	Renamed    string   // name given at run time (PATCH), may be empty; wins over ConfigName
	Tags       []string // sorted, each once: given at run time, else declared in config; shared, never modify
	Online     bool
	HasStatus  bool // a status message set Online (else Online is inferred, see Fleet.Apply)
	HasLED     bool // LEDOn is known
	LEDOn      bool
	HasCount   bool // Count is known
	Count      int64
	Info       Info         // Info.Raw is nil while unknown
	HasUpdate  bool         // Update is known
	Update     UpdateReport // the board's latest update report (v2)
	LastSeen   time.Time    // last message from the board; zero if none yet
	Silent     bool         // marked offline for its silence (Fleet.MarkSilent); its next message makes it online
}

// Name is the name to show: given at run time, else from config, else from
// info, else the id.
func (d *Device) Name() string {
	switch {
	case d.Renamed != "":
		return d.Renamed
	case d.ConfigName != "":
		return d.ConfigName
	case d.Info.Name != "":
		return d.Info.Name
	}
	return d.ID
}

// AppendEvents appends the events that describe d's current state, as sent
// to a browser right after it connects: online, then ledStatus, count and
// info where known, update where known, and meta when the board has tags
// or a name given in config or at run time.
func (d *Device) AppendEvents(evs []Event) []Event {
	evs = append(evs, Event{Device: d.ID, Label: LabelOnline, On: d.Online})
	if d.HasLED {
		evs = append(evs, Event{Device: d.ID, Label: LabelLED, On: d.LEDOn})
	}
	if d.HasCount {
		evs = append(evs, Event{Device: d.ID, Label: LabelCount, Count: d.Count})
	}
	if d.Info.Raw != nil {
		evs = append(evs, Event{Device: d.ID, Label: LabelInfo, Info: d.Info.Raw})
	}
	if d.HasUpdate {
		evs = append(evs, Event{Device: d.ID, Label: LabelUpdate, Info: d.Update.AppendJSON(nil)})
	}
	if len(d.Tags) > 0 || d.Renamed != "" || d.ConfigName != "" {
		evs = append(evs, d.MetaEvent())
	}
	return evs
}

// Declared is a device listed in config, shown before it first connects.
type Declared struct {
	ID   string
	Name string
	Tags []string // valid tags (see NormalizeTags)
}

// Fleet is the state of every known device. It is not safe for concurrent
// use: its owner serialises access.
type Fleet struct {
	devices map[string]*Device
	ids     []string          // sorted ids of devices
	given   map[string]*given // names and tags from config and people by id; outlive Forget
	online  int               // devices with Online set
	max     int               // 0: unlimited
}

// ErrFleetFull is returned by Apply when a new device would exceed the limit.
var ErrFleetFull = fmt.Errorf("too many known devices")

// NewFleet returns a fleet that knows the declared devices (invalid ids and
// tags are an error) and holds at most max devices (0: unlimited).
func NewFleet(declared []Declared, max int) (*Fleet, error) {
	f := &Fleet{devices: map[string]*Device{}, given: map[string]*given{}, max: max}
	for i, d := range declared {
		if err := ValidateID(d.ID); err != nil {
			return nil, fmt.Errorf("devices[%d]: %w", i, err)
		}
		if _, dup := f.given[d.ID]; dup {
			return nil, fmt.Errorf("devices[%d]: duplicate id %q", i, d.ID)
		}
		tags, err := NormalizeTags(d.Tags)
		if err != nil {
			return nil, fmt.Errorf("devices[%d]: %w", i, err)
		}
		f.given[d.ID] = &given{configName: d.Name, configTags: tags}
		f.add(d.ID)
	}
	return f, nil
}

func (f *Fleet) add(id string) *Device {
	d := &Device{ID: id}
	if g := f.given[id]; g != nil {
		g.apply(d)
	}
	f.devices[id] = d
	i := sort.SearchStrings(f.ids, id)
	f.ids = append(f.ids, "")
	copy(f.ids[i+1:], f.ids[i:])
	f.ids[i] = id
	return d
}

// Declare makes board id known at run time, as NewFleet does the declared
// ones: offline, nothing known of it yet, with the names and tags given it
// (SetMeta). It appends the events a browser needs to show it (see
// Device.AppendEvents) and reports added true; a board already known is
// left as it is (added false). A bad id, or a full fleet (ErrFleetFull),
// is an error.
func (f *Fleet) Declare(id string, evs []Event) (_ []Event, added bool, err error) {
	if err := ValidateID(id); err != nil {
		return evs, false, err
	}
	if _, ok := f.devices[id]; ok {
		return evs, false, nil
	}
	if f.max > 0 && len(f.devices) >= f.max {
		return evs, false, fmt.Errorf("device %s: %w (limit %d)", id, ErrFleetFull, f.max)
	}
	return f.add(id).AppendEvents(evs), true, nil
}

// Apply updates the fleet with a message a board published on topic kind k
// at time at, and appends the events to broadcast. An empty payload (a
// cleared retained message) never makes a board known; an empty status
// forgets a known board (that is how DELETE on one control plane reaches
// the others sharing the broker). Commands change nothing. A bad payload
// changes nothing and returns an error wrapping ErrBadPayload.
func (f *Fleet) Apply(id string, k Kind, payload []byte, at time.Time, evs []Event) ([]Event, error) {
	if len(payload) == 0 {
		if k == KindStatus {
			if ev, ok := f.Forget(id); ok {
				evs = append(evs, ev)
			}
		}
		return evs, nil
	}
	if k == KindUpdate {
		return f.applyUpdate(id, payload, at, evs)
	}
	if !k.MakesKnown() {
		return evs, nil
	}
	ev := Event{Device: id}
	var info Info
	var err error
	switch k {
	case KindStatus:
		ev.Label = LabelOnline
		ev.On, err = ParseStatus(payload)
	case KindLED:
		ev.Label = LabelLED
		ev.On, err = ParseLED(payload)
	case KindCount:
		ev.Label = LabelCount
		ev.Count, err = ParseCount(payload)
	case KindInfo:
		ev.Label = LabelInfo
		info, err = ParseInfo(payload)
		ev.Info = info.Raw
	}
	if err != nil {
		return evs, fmt.Errorf("%s of %s: %w", k, id, err)
	}
	d, ok := f.devices[id]
	if !ok {
		if f.max > 0 && len(f.devices) >= f.max {
			return evs, fmt.Errorf("device %s: %w (limit %d)", id, ErrFleetFull, f.max)
		}
		d = f.add(id)
	}
	evs = f.heard(d, at, ev.Label == LabelOnline, evs)
	switch ev.Label {
	case LabelOnline:
		f.setOnline(d, ev.On)
		d.HasStatus = true
	case LabelLED:
		d.HasLED, d.LEDOn = true, ev.On
	case LabelCount:
		// A count is never retained: only a connected board sends one, and
		// a broker delivers its counts before its Last Will. So a board
		// shown offline is online as soon as it counts: its status is
		// unknown (declared and never seen, or forgotten while it stayed
		// connected, its retained status cleared), or the offline it holds
		// is stale (a late Last Will of an older session, or a cluster
		// node's stale retained copy after a failover).
		if !d.Online {
			f.setOnline(d, true)
			evs = append(evs, Event{Device: id, Label: LabelOnline, On: true})
		}
		d.HasCount, d.Count = true, ev.Count
	case LabelInfo:
		d.Info = info
	}
	return append(evs, ev), nil
}

// Stale reports whether a retained message a broker sent again (on a
// repeated subscription, or after a reconnect) on board id's topic of kind
// k tells the fleet nothing: it says what the fleet already holds (the
// same status, led, info or update report), or it is the status of a
// board marked silent (what the board said before it fell silent: only a
// fresh message makes it online again). The caller drops a stale message
// whole: no event, and it does not count as hearing from the board.
// Counts and commands are never retained: never stale.
func (f *Fleet) Stale(id string, k Kind, payload []byte) bool {
	d, ok := f.devices[id]
	if !ok || len(payload) == 0 {
		return false
	}
	switch k {
	case KindStatus:
		on, err := ParseStatus(payload)
		return err == nil && (d.Silent || d.HasStatus && d.Online == on)
	case KindLED:
		on, err := ParseLED(payload)
		return err == nil && d.HasLED && d.LEDOn == on
	case KindInfo:
		return d.Info.Raw != nil && string(d.Info.Raw) == string(payload) // no copy; and no "bytes" (board/imports_test.go)
	case KindUpdate:
		r, err := ParseUpdateReport(payload)
		return err == nil && d.HasUpdate && d.Update == r
	}
	return false
}

// applyUpdate records a known board's update report; a report alone makes
// no board known, and one from an unknown board is dropped.
func (f *Fleet) applyUpdate(id string, payload []byte, at time.Time, evs []Event) ([]Event, error) {
	d, ok := f.devices[id]
	if !ok {
		return evs, nil
	}
	r, err := ParseUpdateReport(payload)
	if err != nil {
		return evs, fmt.Errorf("%s of %s: %w", KindUpdate, id, err)
	}
	evs = f.heard(d, at, false, evs)
	d.HasUpdate, d.Update = true, r
	return append(evs, Event{Device: id, Label: LabelUpdate, Info: r.AppendJSON(nil)}), nil
}

// heard notes a message from board d at time at: its LastSeen, and a board
// marked silent is online again (with its event appended) unless the
// message is a status, which says itself whether it is.
func (f *Fleet) heard(d *Device, at time.Time, status bool, evs []Event) []Event {
	if at.After(d.LastSeen) {
		d.LastSeen = at
	}
	if d.Silent {
		d.Silent = false
		if !status && !d.Online {
			f.setOnline(d, true)
			evs = append(evs, Event{Device: d.ID, Label: LabelOnline, On: true})
		}
	}
	return evs
}

// setOnline sets d.Online and keeps f.online in step.
func (f *Fleet) setOnline(d *Device, on bool) {
	if on != d.Online {
		if on {
			f.online++
		} else {
			f.online--
		}
	}
	d.Online = on
}

// Forget removes a device and returns the removed event to broadcast; ok is
// false if the device was not known. Its names and tags (from config and
// people) are kept for when the device comes back.
func (f *Fleet) Forget(id string) (ev Event, ok bool) {
	d, ok := f.devices[id]
	if !ok {
		return Event{}, false
	}
	if d.Online {
		f.online--
	}
	delete(f.devices, id)
	i := sort.SearchStrings(f.ids, id)
	f.ids = append(f.ids[:i], f.ids[i+1:]...)
	return Event{Device: id, Label: LabelRemoved, On: true}, true
}

// Get returns a copy of the device with this id.
func (f *Fleet) Get(id string) (Device, bool) {
	d, ok := f.devices[id]
	if !ok {
		return Device{}, false
	}
	return *d, true
}

// Known reports whether a device with this id is known.
func (f *Fleet) Known(id string) bool {
	_, ok := f.devices[id]
	return ok
}

// Len returns the number of known devices.
func (f *Fleet) Len() int { return len(f.devices) }

// OnlineCount returns the number of known devices that are online.
func (f *Fleet) OnlineCount() int { return f.online }

// Snapshot appends a copy of every device to ds, sorted by id.
func (f *Fleet) Snapshot(ds []Device) []Device {
	for _, id := range f.ids {
		ds = append(ds, *f.devices[id])
	}
	return ds
}

// AppendEvents appends the state events of every device, sorted by id, as
// a browser gets them on connect.
func (f *Fleet) AppendEvents(evs []Event) []Event {
	for _, id := range f.ids {
		evs = f.devices[id].AppendEvents(evs)
	}
	return evs
}

// AppendDeviceEvents appends the state events of one device; ok is false if
// it is not known.
func (f *Fleet) AppendDeviceEvents(id string, evs []Event) ([]Event, bool) {
	d, ok := f.devices[id]
	if !ok {
		return evs, false
	}
	return d.AppendEvents(evs), true
}
