package loadgen

import (
	"testing"
	"time"
)

func TestBestRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tests := []struct {
		name   string
		points []point
		want   float64
	}{
		{"none", nil, 0},
		{"under a second", []point{{at(0), 0}, {at(900), 900}}, 0},
		{"one second", []point{{at(0), 0}, {at(1000), 500}}, 500},
		{"the shortest window of at least 1 s ending at each point", []point{
			{at(0), 0}, {at(500), 100}, {at(1000), 200}, {at(1500), 1200}, {at(2000), 1300},
		}, 1100}, // 1500 ms back to 500 ms: 1100 bytes in 1 s
		{"a longer gap divides by its length", []point{{at(0), 0}, {at(2000), 1000}}, 500},
	}
	for _, tt := range tests {
		if got := bestRate(tt.points); got != tt.want {
			t.Errorf("%s: bestRate = %v, want %v", tt.name, got, tt.want)
		}
	}
}
