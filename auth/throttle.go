// Throttling failed logins per client address.

package auth

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// The throttling of the contract ("Credentials at scale").
const (
	maxFailures   = 5                // failures within failureWindow that start a refusal
	failureWindow = time.Minute      //
	firstRefusal  = time.Minute      // the first refusal of an address; each next one doubles
	maxRefusal    = 15 * time.Minute // up to this
	forgetIdle    = 15 * time.Minute // an address quiet this long (after its refusal) starts afresh
	maxAddresses  = 10000            // addresses remembered at most
)

// ThrottledError is Login's answer to an address that failed too often:
// nothing was checked. errors.Is(err, ErrThrottled) holds.
type ThrottledError struct {
	RetryAfter time.Duration // until the address may try again
	// First is set on the first refusal of this interval for this
	// address: the one to write to the audit log.
	First bool
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("%v: try again in %v", ErrThrottled, e.RetryAfter.Round(time.Second))
}

// Unwrap makes errors.Is(err, ErrThrottled) hold.
func (e *ThrottledError) Unwrap() error { return ErrThrottled }

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up (HTTP's
// Retry-After): at least 1.
func (e *ThrottledError) RetryAfterSeconds() int {
	s := int((e.RetryAfter + time.Second - 1) / time.Second)
	return max(s, 1)
}

// addressKey is what failures are counted by: the host of remote (never
// the port), IPv4-mapped IPv6 addresses as IPv4.
func addressKey(remote string) string {
	host := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		host = h
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().String()
	}
	return host
}

// throttle counts failed logins per address and refuses an address that
// failed maxFailures times within failureWindow, for firstRefusal, then
// twice as long each time up to maxRefusal.
//
// bcrypt checks in flight count as failures to come: an address never has
// more of them running than it has failures left before a refusal, so
// however many attempts it sends at once, the sixth wrong password within
// a minute is never checked. The others wait for a check of the address
// to end (acquire), one woken per check ended (release), or all when a
// refusal begins. Checks that cost microseconds (a board's secret, a
// remembered password) need no slot: a fleet behind one address logs in
// at once.
//
// It never counts by user name: that would let anybody lock an admin out.
type throttle struct {
	now func() time.Time
	max int // addresses remembered at most

	mu    sync.Mutex          // guards the fields below
	addrs map[string]*address // an entry with checks pending or waiting is never removed
	swept time.Time
}

// address is what the throttle knows of one address.
type address struct {
	fails    []time.Time     // the latest failures, oldest first, at most maxFailures
	pending  int             // bcrypt checks admitted and not released
	waiters  []chan struct{} // attempts waiting for a slot, oldest first
	until    time.Time       // refused until then
	level    int             // refusals so far: the next lasts firstRefusal << level
	reported bool            // the current refusal has been reported (ThrottledError.First)
	last     time.Time       // the latest failure, or the end of the refusal
}

func newThrottle(now func() time.Time) *throttle {
	return &throttle{now: now, max: maxAddresses, addrs: map[string]*address{}}
}

func (a *address) recent(now time.Time) int {
	n := 0
	for _, t := range a.fails {
		if now.Sub(t) < failureWindow {
			n++
		}
	}
	return n
}

func (a *address) busy() bool { return a.pending > 0 || len(a.waiters) > 0 }

func (a *address) idle(now time.Time) bool {
	return !a.busy() && now.Sub(a.last) >= forgetIdle
}

func (a *address) slotFree(now time.Time) bool {
	return a.pending == 0 || a.recent(now)+a.pending < maxFailures
}

// wake wakes the oldest waiter, or all of them.
func (a *address) wake(all bool) {
	for len(a.waiters) > 0 {
		close(a.waiters[0])
		a.waiters = a.waiters[1:]
		if !all {
			return
		}
	}
}

// lookup returns host's entry, nil when there is none; an idle one is
// started afresh (sweep may not have come by). Caller holds mu.
func (t *throttle) lookup(host string, now time.Time) *address {
	t.sweep(now, false)
	a := t.addrs[host]
	if a != nil && a.idle(now) {
		*a = address{}
	}
	return a
}

// refusal returns the error refusing an attempt from a at now, nil when a
// is not refused. Caller holds mu.
func (a *address) refusal(now time.Time) error {
	if a == nil || !now.Before(a.until) {
		return nil
	}
	first := !a.reported
	a.reported = true
	return &ThrottledError{RetryAfter: a.until.Sub(now), First: first}
}

// refused returns a *ThrottledError when host is refused now.
func (t *throttle) refused(host string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	return t.lookup(host, now).refusal(now)
}

// acquire returns a slot for a bcrypt check from host, to give back to
// release; or a channel to wait on (then try again from the start: the
// password may be remembered now); or the refusal. The slot is nil when
// the table is full and host is not in it: untracked.
func (t *throttle) acquire(host string) (*address, <-chan struct{}, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	a := t.lookup(host, now)
	if err := a.refusal(now); err != nil {
		return nil, nil, err
	}
	if a == nil {
		if a = t.add(host, now); a == nil {
			return nil, nil, nil
		}
	}
	if a.slotFree(now) {
		a.pending++
		return a, nil, nil
	}
	w := make(chan struct{})
	a.waiters = append(a.waiters, w)
	return nil, w, nil
}

// release ends a bcrypt check acquire let begin, counting a failure, and
// wakes the next waiter (all of them when a refusal begins).
func (t *throttle) release(host string, a *address, failed bool) {
	if a == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	a.pending--
	if failed {
		t.fail(a, now)
	}
	a.wake(now.Before(a.until))
	t.drop(host, a)
}

// failed counts a failure that took no slot (a wrong board secret).
func (t *throttle) failed(host string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	a := t.lookup(host, now)
	if a == nil {
		if a = t.add(host, now); a == nil {
			return
		}
	}
	t.fail(a, now)
	if now.Before(a.until) {
		a.wake(true)
	}
}

// passOn wakes the next waiter of host, if a slot is free: an attempt that
// was woken but took no slot (its password was remembered meanwhile)
// gives its turn on.
func (t *throttle) passOn(host string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if a := t.addrs[host]; a != nil && a.slotFree(now) {
		a.wake(false)
	}
}

// fail records a failure of a at now, starting a refusal at the fifth
// within failureWindow. Caller holds mu.
func (t *throttle) fail(a *address, now time.Time) {
	if now.Before(a.until) {
		return // a check that began before the refusal does not lengthen it
	}
	a.last = now
	if len(a.fails) == maxFailures {
		a.fails = append(a.fails[:0], a.fails[1:]...)
	}
	a.fails = append(a.fails, now)
	if a.recent(now) < maxFailures {
		return
	}
	d := maxRefusal
	if a.level < 4 { // 1, 2, 4, 8, then 15 minutes
		d = min(firstRefusal<<a.level, maxRefusal)
	}
	a.level++
	a.until, a.last, a.reported, a.fails = now.Add(d), now.Add(d), false, a.fails[:0]
}

// drop forgets host when there is nothing to remember of it: an address
// that only logs in leaves nothing. Caller holds mu.
func (t *throttle) drop(host string, a *address) {
	if !a.busy() && len(a.fails) == 0 && a.level == 0 && t.addrs[host] == a {
		delete(t.addrs, host)
	}
}

// add remembers host, making room if the table is full: first by
// forgetting idle addresses, then the address quiet the longest. It
// returns nil when every address has a check running or waiting.
func (t *throttle) add(host string, now time.Time) *address {
	if len(t.addrs) >= t.max {
		t.sweep(now, true)
	}
	if len(t.addrs) >= t.max {
		var oldest string
		var at time.Time
		for h, a := range t.addrs {
			if !a.busy() && (oldest == "" || a.last.Before(at)) {
				oldest, at = h, a.last
			}
		}
		if oldest == "" {
			return nil
		}
		delete(t.addrs, oldest)
	}
	a := &address{}
	t.addrs[host] = a
	return a
}

// sweep forgets idle addresses, at most once a minute unless forced.
func (t *throttle) sweep(now time.Time, force bool) {
	if !force && now.Sub(t.swept) < time.Minute {
		return
	}
	t.swept = now
	for h, a := range t.addrs {
		if a.idle(now) {
			delete(t.addrs, h)
		}
	}
}
