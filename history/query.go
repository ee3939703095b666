package history

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Limits of a history or audit query.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
	// DefaultCountsWindow is how far back /counts looks without since.
	DefaultCountsWindow = 24 * time.Hour
)

// ErrBadQuery is wrapped by every query parsing error (an HTTP 400).
var ErrBadQuery = errors.New("bad query")

// Query is the window of a history or audit request: events at or after
// Since and before Until (zero: unbounded), newest first, at most Limit.
type Query struct {
	Since, Until time.Time
	Limit        int
}

// ParseQuery parses the since, until (RFC 3339, either may be empty) and
// limit (1 to MaxLimit, empty for DefaultLimit) parameters of a request.
func ParseQuery(since, until, limit string) (Query, error) {
	q := Query{Limit: DefaultLimit}
	var err error
	if q.Since, err = parseTime("since", since); err != nil {
		return q, err
	}
	if q.Until, err = parseTime("until", until); err != nil {
		return q, err
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		return q, fmt.Errorf("%w: until %s is not after since %s", ErrBadQuery, until, since)
	}
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 1 || n > MaxLimit {
			return q, fmt.Errorf("%w: limit %q: want a number from 1 to %d", ErrBadQuery, limit, MaxLimit)
		}
		q.Limit = n
	}
	return q, nil
}

func parseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s %q: want an RFC 3339 time such as 2026-12-03T14:00:00Z", ErrBadQuery, name, s)
	}
	return t, nil
}

// Steps of /counts: at least the sampler's minute, a whole number of
// minutes, at most a day.
const (
	MinStep = time.Minute
	MaxStep = 24 * time.Hour
)

// ParseStep parses /counts' step parameter ("1m", "15m", "1h"; empty for
// a minute).
func ParseStep(s string) (time.Duration, error) {
	if s == "" {
		return MinStep, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < MinStep || d > MaxStep || d%MinStep != 0 {
		return 0, fmt.Errorf("%w: step %q: want whole minutes from 1m to 24h, such as 1m, 15m or 1h", ErrBadQuery, s)
	}
	return d, nil
}

// FormatStep writes a step as the API answers it: "1m", "15m", "1h", "1h30m".
func FormatStep(d time.Duration) string {
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case h == 0:
		return strconv.Itoa(m) + "m"
	case m == 0:
		return strconv.Itoa(h) + "h"
	}
	return strconv.Itoa(h) + "h" + strconv.Itoa(m) + "m"
}

// Downsample returns the last count of each step of pts (one board's
// points, oldest first), each at its step's start.
func Downsample(pts []Point, step time.Duration) []Point {
	var out []Point
	for _, p := range pts {
		p.At = p.At.Truncate(step)
		if n := len(out); n > 0 && out[n-1].At.Equal(p.At) {
			out[n-1] = p
			continue
		}
		out = append(out, p)
	}
	return out
}
