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
// twice as long each time up to maxRefusal. Checks in flight count as
// failures to come: an address never has more checks running than it has
// failures left before a refusal, so however many attempts it sends at
// once, the sixth wrong password within a minute is never checked.
//
// It never counts by user name: that would let anybody lock an admin out.
type throttle struct {
	now func() time.Time
	max int // addresses remembered at most

	mu    sync.Mutex          // guards the fields below
	addrs map[string]*address // an entry with checks pending is never removed
	swept time.Time
}

// address is what the throttle knows of one address.
type address struct {
	fails    []time.Time   // the latest failures, oldest first, at most maxFailures
	pending  int           // checks admitted and not done
	until    time.Time     // refused until then
	level    int           // refusals so far: the next lasts firstRefusal << level
	reported bool          // the current refusal has been reported (ThrottledError.First)
	last     time.Time     // the latest failure, or the end of the refusal
	wake     chan struct{} // closed when a check ends, for attempts waiting to be admitted; nil: none wait
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

func (a *address) idle(now time.Time) bool {
	return a.pending == 0 && now.Sub(a.last) >= forgetIdle
}

// admit lets a check from host begin, or refuses it with a
// *ThrottledError. It waits while host has as many checks running as it
// has failures left. The *address (nil when the table is full and host is
// not in it: untracked) goes back to done.
func (t *throttle) admit(host string) (*address, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		now := t.now()
		t.sweep(now, false)
		a := t.addrs[host]
		if a != nil && a.idle(now) {
			*a = address{} // quiet long enough: afresh (sweep may not have come by)
		}
		if a == nil {
			if a = t.add(host, now); a == nil {
				return nil, nil
			}
		}
		if now.Before(a.until) {
			first := !a.reported
			a.reported = true
			return nil, &ThrottledError{RetryAfter: a.until.Sub(now), First: first}
		}
		if a.pending == 0 || a.recent(now)+a.pending < maxFailures {
			a.pending++
			return a, nil
		}
		if a.wake == nil {
			a.wake = make(chan struct{})
		}
		w := a.wake
		t.mu.Unlock()
		<-w // a check of host ends (pending > 0, so one will)
		t.mu.Lock()
	}
}

// done ends a check admit let begin, counting a failure.
func (t *throttle) done(host string, a *address, failed bool) {
	if a == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	a.pending--
	if failed && !now.Before(a.until) { // a check that began before a refusal does not lengthen it
		a.last = now
		if len(a.fails) == maxFailures {
			a.fails = append(a.fails[:0], a.fails[1:]...)
		}
		a.fails = append(a.fails, now)
		if a.recent(now) >= maxFailures {
			d := maxRefusal
			if a.level < 4 { // 1, 2, 4, 8, then 15 minutes
				d = min(firstRefusal<<a.level, maxRefusal)
			}
			a.level++
			a.until, a.last, a.reported, a.fails = now.Add(d), now.Add(d), false, a.fails[:0]
		}
	}
	if a.wake != nil {
		close(a.wake)
		a.wake = nil
	}
	if a.pending == 0 && len(a.fails) == 0 && a.level == 0 && t.addrs[host] == a {
		delete(t.addrs, host) // nothing to remember: an address that only logs in leaves nothing
	}
}

// add remembers host, making room if the table is full: first by
// forgetting idle addresses, then the address quiet the longest. It
// returns nil when every address has a check running.
func (t *throttle) add(host string, now time.Time) *address {
	if len(t.addrs) >= t.max {
		t.sweep(now, true)
	}
	if len(t.addrs) >= t.max {
		var oldest string
		var at time.Time
		for h, a := range t.addrs {
			if a.pending == 0 && (oldest == "" || a.last.Before(at)) {
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
