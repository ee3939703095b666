package history

import "time"

// Sampler keeps the last count of each board in the current step and
// hands out one Point per board and step: the count history is a row per
// board a minute, never a row per count message. It is not safe for
// concurrent use.
type Sampler struct {
	step time.Duration
	last map[string]sample
}

// sample is a board's last count in the step starting at step.
type sample struct {
	step  time.Time
	count int64
}

// NewSampler returns a sampler of the given step (0 means a minute).
func NewSampler(step time.Duration) *Sampler {
	if step <= 0 {
		step = time.Minute
	}
	return &Sampler{step: step, last: map[string]sample{}}
}

// Observe takes a count the board id sent at at, and appends to pts the
// point of the board's previous step when at falls in a later one.
func (s *Sampler) Observe(id string, count int64, at time.Time, pts []Point) []Point {
	step := at.Truncate(s.step)
	if l, ok := s.last[id]; ok && !step.Equal(l.step) {
		if step.Before(l.step) { // a clock step back: keep the newer step
			l.count = count
			s.last[id] = l
			return pts
		}
		pts = append(pts, Point{Device: id, At: l.step, Count: l.count})
	}
	s.last[id] = sample{step: step, count: count}
	return pts
}

// Due appends the points of every step that ended by now, and forgets
// them: a board that stopped counting still gets its last step written.
func (s *Sampler) Due(now time.Time, pts []Point) []Point {
	cur := now.Truncate(s.step)
	for id, l := range s.last {
		if l.step.Before(cur) {
			pts = append(pts, Point{Device: id, At: l.step, Count: l.count})
			delete(s.last, id)
		}
	}
	return pts
}

// Forget drops a board's unfinished step.
func (s *Sampler) Forget(id string) { delete(s.last, id) }
