// The writer pool: browsers with something to send wait in the ready
// queue for one of a few workers.

package wsgateway

import (
	"runtime"
	"sync"
)

// readyQueue is the browsers waiting for a pool worker, in order. A browser
// is in it at most once: only startWriter puts it there, when no writer
// holds it (client.writing).
type readyQueue struct {
	mu      sync.Mutex // guards q, head and stopped
	cond    sync.Cond  // signalled when q grows or stopped is set
	q       []*client  // q[head:] wait; the array is reused (see pop)
	head    int
	stopped bool
}

func (r *readyQueue) push(c *client) {
	r.mu.Lock()
	r.q = append(r.q, c)
	r.mu.Unlock()
	r.cond.Signal()
}

// pop waits for a browser; false once stopped and empty.
func (r *readyQueue) pop() (*client, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.head == len(r.q) {
		if r.stopped {
			return nil, false
		}
		r.cond.Wait()
	}
	c := r.q[r.head]
	r.q[r.head] = nil
	r.head++
	// Reuse the array instead of growing a new one behind the taken part
	// (17 % of the garbage under workload (c)): start over when empty,
	// move the rest down when half is taken.
	switch {
	case r.head == len(r.q):
		r.q, r.head = r.q[:0], 0
	case r.head >= 64 && 2*r.head >= len(r.q):
		n := copy(r.q, r.q[r.head:])
		clear(r.q[n:])
		r.q, r.head = r.q[:n], 0
	}
	return c, true
}

func (r *readyQueue) stop() {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
	r.cond.Broadcast()
}

// startWorkers starts the pool, one worker per CPU (Config.Writers; tried:
// one fewer, to leave a CPU for the network; toggle p99 under workload (c)
// went from 17-19 ms to 20-23 ms). stopWorkers ends them once the queue is
// empty.
func (g *Gateway) startWorkers() {
	g.ready.cond.L = &g.ready.mu
	g.workersWG.Add(g.cfg.Writers)
	for range g.cfg.Writers {
		go g.worker() // ends when stopWorkers has run and the queue is empty
	}
}

func (g *Gateway) stopWorkers() {
	g.ready.stop()
	g.workersWG.Wait()
}

// worker gives each browser it takes off the ready queue one pool turn
// (client.poolTurn).
func (g *Gateway) worker() {
	defer g.workersWG.Done()
	buf := make([]byte, 0, 16<<10)
	for {
		c, ok := g.ready.pop()
		if !ok {
			return
		}
		var again bool
		if buf, again = c.poolTurn(buf); again {
			g.ready.push(c) // to the back: one round per browser per turn
		}
		runtime.Gosched() // let what waits for a CPU run between two writes
	}
}
