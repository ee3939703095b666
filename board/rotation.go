package board

// Broker is one MQTT broker of a board that knows several (Config.Brokers):
// a Session that connects to it alone, and its URL for log lines (without
// a password; empty to leave it out).
type Broker struct {
	URL     string
	Session Session
}

// rotation decides, after each attempt to be online, which broker a board
// tries next and whether it backs off first (v2 failover, contract
// "Several brokers and several control planes"):
//
//   - the first connect goes to the first broker;
//   - after a lost connection or a failed connect the board tries the next
//     broker at once, wrapping around;
//   - only when a whole round of the list has failed (every broker once,
//     the one whose connection was lost counting as the first) does it
//     back off, with the number of whole rounds failed before as the
//     exponent; being online again starts from 0.
//
// With one broker every failure is a whole round, so a single-broker board
// backs off as it always did: after a lost connection by backoff(0), after
// each failed connect by the next power.
//
// Every broker gets the same connect timeout, at most
// FailoverConnectTimeout when there are several, so a dead node (no answer
// at all) holds a board up for at most that before the next one.
type rotation struct {
	n      int // brokers in the list, at least 1
	next   int // the broker to try next
	failed int // brokers failed in the current round
	rounds int // whole rounds failed since the board was last online
}

// after records the end of an attempt on r.next: online says whether the
// board got online on it (and then lost the connection), as opposed to a
// connect or resync that failed. It moves r.next on and reports whether to
// back off before the attempt, and the backoff exponent.
func (r *rotation) after(online bool) (backoff bool, exp int) {
	if online {
		r.failed, r.rounds = 0, 0
	}
	r.next = (r.next + 1) % r.n
	r.failed++
	if r.failed < r.n {
		return false, 0
	}
	r.failed = 0
	r.rounds++
	return true, r.rounds - 1
}
