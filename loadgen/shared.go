// What the boards and the browsers of a run share: each board's send
// times, its LED, the toggle in flight and the count of window messages.
// In one process it is plain memory; with Config.BoardsApart it is a file
// the browsers' process and the boards' process both map (boards.go).

package loadgen

import (
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// shared is a view on one array of int64, laid out as
//
//	0        published: count messages sent in the window
//	1        the toggled board's index + 1; 0: no toggle in flight
//	2        the toggled board's socket receipt of led/set (unix ns; 0: not yet)
//	3        when its handler ran (unix ns)
//	4        when it wrote its new LED state (unix ns)
//	5..7     unused
//	8..      each board's LED (1: on), then each board's send times by seq
//
// Every field is read and written atomically: the other process may be
// at it.
type shared struct {
	mem       []atomic.Int64
	published *atomic.Int64
	toggled   *atomic.Int64 // board index + 1
	boardAt   *atomic.Int64
	boardRead *atomic.Int64
	ledOut    *atomic.Int64
	boards    int
	perBoard  int
}

const sharedHeader = 8

// sharedLen is the number of int64 the layout needs.
func sharedLen(boards, perBoard int) int { return sharedHeader + boards + boards*perBoard }

// newShared lays the view over mem, which holds sharedLen(boards, perBoard).
func newShared(mem []atomic.Int64, boards, perBoard int) *shared {
	return &shared{mem: mem, published: &mem[0], toggled: &mem[1], boardAt: &mem[2], boardRead: &mem[3], ledOut: &mem[4],
		boards: boards, perBoard: perBoard}
}

// sharedOf views b (a shared mapping, 8-byte aligned) as the layout.
func sharedOf(b []byte, boards, perBoard int) *shared {
	n := sharedLen(boards, perBoard)
	mem := unsafe.Slice((*atomic.Int64)(unsafe.Pointer(unsafe.SliceData(b))), n)
	return newShared(mem, boards, perBoard)
}

// mapShared maps f, sized for the layout (both processes call it on the
// same file), and views it; unmap the returned mapping when done.
func mapShared(f *os.File, boards, perBoard int) ([]byte, *shared, error) {
	size := 8 * sharedLen(boards, perBoard)
	data, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("map %s: %w", f.Name(), err)
	}
	return data, sharedOf(data, boards, perBoard), nil
}

// led is board i's LED.
func (s *shared) led(i int) *atomic.Int64 { return &s.mem[sharedHeader+i] }

// sent is board i's send times by seq (unix ns; 0: not sent).
func (s *shared) sent(i int) []atomic.Int64 {
	off := sharedHeader + s.boards + i*s.perBoard
	return s.mem[off : off+s.perBoard : off+s.perBoard]
}

// startToggle marks board i's toggle in flight, its legs not yet seen.
func (s *shared) startToggle(i int) {
	s.toggled.Store(0)
	s.boardAt.Store(0)
	s.boardRead.Store(0)
	s.ledOut.Store(0)
	s.toggled.Store(int64(i) + 1)
}

// toggling reports whether board i's toggle is in flight.
func (s *shared) toggling(i int) bool { return s.toggled.Load() == int64(i)+1 }
