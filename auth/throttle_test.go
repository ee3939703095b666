package auth

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestAddressKey(t *testing.T) {
	for _, tc := range []struct{ remote, want string }{
		{"192.0.2.1:5000", "192.0.2.1"},
		{"192.0.2.1", "192.0.2.1"},
		{"[2001:db8::1]:5000", "2001:db8::1"},
		{"[2001:DB8:0::1]:1", "2001:db8::1"},
		{"[::ffff:192.0.2.1]:1", "192.0.2.1"},
		{"", ""},
		{"pipe", "pipe"},
	} {
		if got := addressKey(tc.remote); got != tc.want {
			t.Errorf("addressKey(%q) = %q, want %q", tc.remote, got, tc.want)
		}
	}
}

// attempt is one login attempt in a throttle script.
type attempt struct {
	at    time.Duration // since the script began
	host  string
	fail  bool          // the check's outcome, when it runs
	want  time.Duration // 0: the check runs; else refused, with this RetryAfter
	first bool          // when refused: the interval's first refusal
}

// fails returns n failing attempts from host, every step from at.
func fails(host string, at, step time.Duration, n int) []attempt {
	var out []attempt
	for i := range n {
		out = append(out, attempt{at: at + time.Duration(i)*step, host: host, fail: true})
	}
	return out
}

func script(parts ...any) []attempt {
	var out []attempt
	for _, p := range parts {
		switch p := p.(type) {
		case attempt:
			out = append(out, p)
		case []attempt:
			out = append(out, p...)
		}
	}
	return out
}

const a1, a2 = "192.0.2.1", "192.0.2.2"

func TestThrottleScripts(t *testing.T) {
	s := time.Second
	m := time.Minute
	// escalate returns the attempts of refusal after refusal: five
	// failures, then an attempt at the start and at the end of the
	// refusal, whose lengths are want.
	escalate := func(want ...time.Duration) []attempt {
		var out []attempt
		at := time.Duration(0)
		for _, d := range want {
			out = append(out, fails(a1, at, s, 5)...)
			at += 4 * s
			out = append(out, attempt{at: at, host: a1, want: d, first: true},
				attempt{at: at + d - s, host: a1, want: s})
			at += d
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		attempts []attempt
	}{
		{"the sixth failure within a minute is refused", script(
			fails(a1, 0, 10*s, 5),
			attempt{at: 41 * s, host: a1, want: 59 * s, first: true},
			attempt{at: 42 * s, host: a1, want: 58 * s},
			attempt{at: 99 * s, host: a1, want: 1 * s},
			attempt{at: 100 * s, host: a1, fail: true}, // the refusal is over
		)},
		{"a correct password is refused too", script(
			fails(a1, 0, s, 5),
			attempt{at: 5 * s, host: a1, fail: false, want: 59 * s, first: true},
		)},
		{"failures spread over more than a minute are not", script(
			fails(a1, 0, 20*s, 8),
			attempt{at: 161 * s, host: a1},
		)},
		{"per address, port aside", script(
			fails(a1, 0, s, 5),
			attempt{at: 5 * s, host: a2},
			fails(a2, 6*s, s, 4),
			attempt{at: 10 * s, host: a2},
			attempt{at: 11 * s, host: a1, want: 53 * s, first: true},
		)},
		{"a success resets nothing", script(
			fails(a1, 0, s, 4),
			attempt{at: 5 * s, host: a1},
			attempt{at: 6 * s, host: a1, fail: true},
			attempt{at: 7 * s, host: a1, want: 59 * s, first: true},
		)},
		{"doubling up to 15 minutes", escalate(m, 2*m, 4*m, 8*m, 15*m, 15*m)},
		{"15 quiet minutes after a refusal start afresh", script(
			fails(a1, 0, s, 5), // refused 0:04 to 1:04
			fails(a1, 64*s+15*m, s, 5),
			attempt{at: 68*s + 15*m, host: a1, want: m, first: true},
		)},
		{"fewer quiet minutes do not", script(
			fails(a1, 0, s, 5),
			fails(a1, 64*s+14*m, s, 5),
			attempt{at: 68*s + 14*m, host: a1, want: 2 * m, first: true},
		)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}
			start := clk.now()
			th := newThrottle(clk.now)
			for i, at := range tc.attempts {
				clk.t = start.Add(at.at)
				err := th.refused(at.host)
				var slot *address
				var wait <-chan struct{}
				if err == nil {
					slot, wait, err = th.acquire(at.host)
				}
				var te *ThrottledError
				switch {
				case at.want == 0 && (err != nil || wait != nil):
					t.Fatalf("attempt %d (%v from %s): %v (wait %v), want it checked", i, at.at, at.host, err, wait != nil)
				case at.want == 0:
					th.release(at.host, slot, at.fail)
				case !errors.As(err, &te):
					t.Fatalf("attempt %d (%v from %s): %v, want refused for %v", i, at.at, at.host, err, at.want)
				case te.RetryAfter != at.want || te.First != at.first:
					t.Fatalf("attempt %d (%v from %s): refused for %v (first %v), want %v (first %v)",
						i, at.at, at.host, te.RetryAfter, te.First, at.want, at.first)
				}
			}
		})
	}
}

// TestThrottleChecksInFlight: an address never has more bcrypt checks
// running than failures left, so a burst of attempts gets five checks, not
// more; the others wait, and are refused when the five fail.
func TestThrottleChecksInFlight(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}
	th := newThrottle(clk.now)
	var slots []*address
	for range 5 {
		slot, wait, err := th.acquire(a1)
		if err != nil || wait != nil {
			t.Fatalf("acquire = %v (wait %v), want a slot", err, wait != nil)
		}
		slots = append(slots, slot)
	}
	_, sixth, err := th.acquire(a1)
	if err != nil || sixth == nil {
		t.Fatalf("the sixth acquire = %v (wait %v), want to wait", err, sixth != nil)
	}
	if _, wait, err := th.acquire(a2); err != nil || wait != nil { // another address is not held up
		t.Fatalf("acquire(a2) = %v (wait %v)", err, wait != nil)
	}
	th.release(a1, slots[0], false) // a success frees a slot: the waiter's turn
	select {
	case <-sixth:
	default:
		t.Fatal("a slot freed, and the waiter not woken")
	}
	slot, wait, err := th.acquire(a1)
	if err != nil || wait != nil {
		t.Fatalf("the woken waiter's acquire = %v (wait %v), want a slot", err, wait != nil)
	}
	_, seventh, _ := th.acquire(a1)
	for _, s := range append(slots[1:], slot) {
		th.release(a1, s, true)
	}
	select {
	case <-seventh:
	default:
		t.Fatal("a refusal began, and the waiter not woken")
	}
	var te *ThrottledError
	if err := th.refused(a1); !errors.As(err, &te) || te.RetryAfter != time.Minute {
		t.Errorf("after five failures: %v, want refused for a minute", err)
	}
}

func TestThrottleMemoryBounded(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}
	th := newThrottle(clk.now)
	th.max = 3
	size := func() int {
		th.mu.Lock()
		defer th.mu.Unlock()
		return len(th.addrs)
	}
	for i := range 5 {
		host := fmt.Sprintf("192.0.2.%d", i)
		clk.advance(time.Second)
		th.failed(host)
		if got := size(); got > th.max {
			t.Fatalf("%d addresses remembered, want at most %d", got, th.max)
		}
	}
	th.mu.Lock()
	_, oldest := th.addrs["192.0.2.0"]
	_, newest := th.addrs["192.0.2.4"]
	th.mu.Unlock()
	if oldest || !newest {
		t.Errorf("the quietest address should make room for the newest (oldest kept %v, newest kept %v)", oldest, newest)
	}
	// Successes leave nothing; idle addresses are forgotten.
	clk.advance(forgetIdle)
	slot, _, err := th.acquire("198.51.100.1")
	if err != nil {
		t.Fatal(err)
	}
	th.release("198.51.100.1", slot, false)
	if got := size(); got != 0 {
		t.Errorf("%d addresses remembered after %v idle, want 0", got, forgetIdle)
	}
}
