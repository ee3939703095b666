package board

import "testing"

func TestRotation(t *testing.T) {
	type step struct {
		online  bool // the attempt had got online before it ended
		next    int  // broker tried next
		backoff bool // backing off first
		exp     int  // its exponent
	}
	tests := []struct {
		name  string
		n     int
		steps []step
	}{
		{"one broker backs off after every failure", 1, []step{
			{false, 0, true, 0}, {false, 0, true, 1}, {false, 0, true, 2},
			{true, 0, true, 0}, {false, 0, true, 1},
		}},
		{"three: connect failures rotate, then back off", 3, []step{
			{false, 1, false, 0}, {false, 2, false, 0}, {false, 0, true, 0},
			{false, 1, false, 0}, {false, 2, false, 0}, {false, 0, true, 1},
			{false, 1, false, 0}, {false, 2, false, 0}, {false, 0, true, 2},
		}},
		{"three: a loss moves on at once and counts as the first failure", 3, []step{
			{true, 1, false, 0}, {true, 2, false, 0}, {true, 0, false, 0}, // wraps around
			{true, 1, false, 0}, {false, 2, false, 0}, {false, 0, true, 0},
			{false, 1, false, 0}, {true, 2, false, 0}, // online again: exponent from 0
			{false, 0, false, 0}, {false, 1, true, 0},
		}},
		{"two", 2, []step{
			{true, 1, false, 0}, {false, 0, true, 0}, {false, 1, false, 0}, {false, 0, true, 1},
		}},
	}
	for _, tt := range tests {
		r := rotation{n: tt.n}
		if r.next != 0 {
			t.Fatalf("%s: first broker: got %d, want 0", tt.name, r.next)
		}
		for i, s := range tt.steps {
			backoff, exp := r.after(s.online)
			if r.next != s.next || backoff != s.backoff || exp != s.exp {
				t.Errorf("%s, step %d (online %t): got next %d, backoff %t, exp %d; want %d, %t, %d",
					tt.name, i, s.online, r.next, backoff, exp, s.next, s.backoff, s.exp)
			}
		}
	}
}
