package connslot

import (
	"errors"
	"testing"

	"switchyard/board"
)

func TestSlot(t *testing.T) {
	var s Slot[*int]
	if c, err := s.Get(); c != nil || !errors.Is(err, board.ErrNotConnected) {
		t.Fatalf("empty Get = %v, %v; want nil, ErrNotConnected", c, err)
	}
	first, second := new(int), new(int)
	if old := s.Swap(first); old != nil {
		t.Errorf("first Swap returned %v, want nil", old)
	}
	if old := s.Swap(second); old != first {
		t.Errorf("second Swap returned %v, want the first connection %v", old, first)
	}
	if c, err := s.Get(); c != second || err != nil {
		t.Errorf("Get = %v, %v; want the second connection %v, nil", c, err, second)
	}
	if c := s.Take(); c != second {
		t.Errorf("Take = %v, want the second connection %v", c, second)
	}
	if c := s.Take(); c != nil {
		t.Errorf("Take again = %v, want nil", c)
	}
	if _, err := s.Get(); !errors.Is(err, board.ErrNotConnected) {
		t.Errorf("Get after Take: %v, want ErrNotConnected", err)
	}
}
