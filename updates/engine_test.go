package updates

import (
	"reflect"
	"testing"
	"time"

	"switchyard/rollout"
)

// cloneInto copies a rollout into a reused copy of any shape: the result
// equals the source and shares none of what Step changes with it.
func TestCloneInto(t *testing.T) {
	mk := func(sizes ...int) *rollout.Rollout {
		r := &rollout.Rollout{ID: "r", State: rollout.Running, Counts: map[rollout.BoardState]int{}}
		for w, n := range sizes {
			wave := rollout.Wave{Size: n, State: rollout.WavePending}
			for i := range n {
				wave.Boards = append(wave.Boards, rollout.Board{ID: string(rune('a'+w)) + string(rune('a'+i)), State: rollout.BoardPending})
			}
			r.Waves = append(r.Waves, wave)
		}
		r.Recount()
		return r
	}
	tests := []struct {
		name string
		into *rollout.Rollout
		from *rollout.Rollout
	}{
		{"into nothing", nil, mk(1, 3, 5)},
		{"into the same shape", mk(1, 3, 5), mk(1, 3, 5)},
		{"into fewer waves", mk(2), mk(1, 3, 5)},
		{"into more waves and boards", mk(4, 4, 4, 4), mk(1, 3)},
		{"into no waves", mk(), mk(2, 2)},
	}
	if got := cloneInto(mk(3), &rollout.Rollout{ID: "none"}); got.Waves != nil {
		t.Errorf("a rollout without waves cloned with waves %#v, want nil", got.Waves)
	}
	for _, tt := range tests {
		tt.from.Waves[0].Boards[0].State = rollout.BoardUpdating
		tt.from.Recount()
		got := cloneInto(tt.into, tt.from)
		if !reflect.DeepEqual(got, tt.from) {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.from)
			continue
		}
		// The source changes as Step changes it; the copy does not.
		tt.from.Waves[0].Boards[0].State = rollout.BoardUpdated
		tt.from.Waves[0].State = rollout.WaveDone
		tt.from.Counts[rollout.BoardUpdated]++
		tt.from.Updated = time.Unix(1, 0)
		if got.Waves[0].Boards[0].State != rollout.BoardUpdating || got.Waves[0].State != rollout.WavePending ||
			got.Counts[rollout.BoardUpdated] != 0 || !got.Updated.IsZero() {
			t.Errorf("%s: the copy changed with its source: %+v", tt.name, got)
		}
	}
}
