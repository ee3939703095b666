package devices

import "time"

// Silence: some brokers drop a dead node's clients without publishing
// their Last Wills (NATS does), so with an external broker a board can
// stop for good while its retained status still says online. The control
// plane then judges by what it hears: a board online that has sent nothing
// for Silence.Limit is marked offline, silent, and is online again at its
// next message.

// DefaultSilentInterval is the counting interval assumed for a board whose
// info does not give its interval_ms: the contract's default.
const DefaultSilentInterval = time.Second

// Silence is the rule that marks a quiet board offline. Its zero value is
// the contract's rule: 3 × the board's interval plus 15 s.
type Silence struct {
	// Grace is added to the intervals; 0 means 15 s.
	Grace time.Duration
	// Intervals is how many of the board's counting intervals may pass
	// without a message; 0 means 3.
	Intervals int
}

// Limit is how long board d may stay quiet before it counts as offline:
// Intervals × its interval_ms (DefaultSilentInterval when unknown) plus
// Grace.
func (s Silence) Limit(d *Device) time.Duration {
	grace, n := s.Grace, s.Intervals
	if grace <= 0 {
		grace = 15 * time.Second
	}
	if n <= 0 {
		n = 3
	}
	interval := DefaultSilentInterval
	if ms := d.Info.IntervalMS; ms > 0 && ms <= int64(24*time.Hour/time.Millisecond) {
		interval = time.Duration(ms) * time.Millisecond
	}
	return time.Duration(n)*interval + grace
}

// Silenced reports whether d, online, has been quiet for longer than the
// rule allows at now. A board never heard from (zero LastSeen) is not
// judged.
func (s Silence) Silenced(d *Device, now time.Time) bool {
	return d.Online && !d.LastSeen.IsZero() && now.Sub(d.LastSeen) > s.Limit(d)
}

// MarkSilent marks offline every online board that rule says has been
// quiet too long at now, and appends an online=false event for each, in
// order of id. listening is since when the caller could hear the boards
// (its broker connection is up): quiet before it does not count, so a
// control plane that was cut off does not blame the boards. A board marked
// so is Silent until its next message, which makes it online again (see
// Apply).
func (f *Fleet) MarkSilent(rule Silence, now, listening time.Time, evs []Event) []Event {
	if f.online == 0 || now.Sub(listening) <= 0 {
		return evs
	}
	for _, id := range f.ids {
		d := f.devices[id]
		if !rule.Silenced(d, now) || now.Sub(listening) <= rule.Limit(d) {
			continue
		}
		f.setOnline(d, false)
		d.Silent = true
		evs = append(evs, Event{Device: id, Label: LabelOnline, On: false})
	}
	return evs
}

// Silent reports whether board id is known and marked offline for its
// silence (MarkSilent), with no message from it since.
func (f *Fleet) Silent(id string) bool {
	d, ok := f.devices[id]
	return ok && d.Silent
}
