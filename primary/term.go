// Package primary elects the one control plane, of several sharing a
// database, that drives rollouts and records the boards' history: the
// primary. It holds a lease in the database (package store's leases),
// renewed every RenewEvery for TTL, measured by the database's clock.
//
// The decision is Term's, pure: a holder counts itself primary from an
// acquisition that worked until TTL (less a margin) after it *asked*, by
// its own clock. The database set the lease's expiry later than that (when
// it ran the statement, on its own clock), so a holder that cannot renew
// (the database or the network is gone, the process was stopped for a
// while) has stepped down before anyone else can take the lease over: two
// primaries never overlap, as long as the clocks' rates agree over a TTL.
//
// The Elector is the adapter: one goroutine that asks the database, logs
// every change of role, and keeps the gauge switchyard_primary. Consumers
// (the update service, the recorder) ask Primary() when they act; it
// answers from the clock too, so a renewal stuck in a dead connection
// does not keep a primary beyond its deadline.
package primary

import "time"

// Term is a holder's view of its lease.
type Term struct {
	Held     bool
	Deadline time.Time // the end of the holder's own term (Held)
}

// Renewed is the term after an acquisition asked at asked: got says
// whether the database granted the lease. A grant holds until ttl less
// margin after asked; a refusal ends the term. An acquisition that got no
// answer (an error) changes nothing: the term it had ends at its deadline.
func Renewed(asked time.Time, got bool, ttl, margin time.Duration) Term {
	if !got {
		return Term{}
	}
	return Term{Held: true, Deadline: asked.Add(ttl - margin)}
}

// Primary reports whether the holder is primary at now.
func (t Term) Primary(now time.Time) bool { return t.Held && now.Before(t.Deadline) }
