package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat;
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// procStat is a sample of the processes under test.
type procStat struct {
	cpu time.Duration // user + system CPU since each process started
	rss int64         // resident set, bytes
}

// readProc sums CPU time and RSS over pids from /proc.
func readProc(pids []int) (procStat, error) {
	var s procStat
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return s, fmt.Errorf("read /proc/%d/stat: %w", pid, err)
		}
		// The command name may hold spaces: fields start after the last ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			return s, fmt.Errorf("parse /proc/%d/stat: no ')'", pid)
		}
		f := bytes.Fields(stat[i+1:])
		if len(f) < 22 {
			return s, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
		}
		// f[0] is field 3 (state): utime is field 14, stime 15, rss 24 (pages).
		ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
		st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
		if err1 != nil || err2 != nil {
			return s, fmt.Errorf("parse /proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
		}
		s.cpu += time.Duration(ut+st) * time.Second / clockTicks
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return s, fmt.Errorf("read /proc/%d/status: %w", pid, err)
		}
		if j := bytes.Index(status, []byte("\nVmRSS:")); j >= 0 {
			line := status[j+7:]
			if k := bytes.IndexByte(line, '\n'); k >= 0 {
				line = line[:k]
			}
			kb, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(line), []byte("kB")))), 10, 64)
			if err != nil {
				return s, fmt.Errorf("parse /proc/%d/status VmRSS %q: %w", pid, line, err)
			}
			s.rss += kb << 10
		}
	}
	return s, nil
}

// sampler polls readProc every 100 ms and keeps the peak RSS.
type sampler struct {
	pids []int
	mu   sync.Mutex
	peak int64
	err  error
	stop chan struct{}
	done chan struct{}
}

// startSampler starts polling pids; with no pids it samples nothing.
func startSampler(pids []int) *sampler {
	s := &sampler{pids: pids, stop: make(chan struct{}), done: make(chan struct{})}
	if len(pids) == 0 {
		close(s.done)
		return s
	}
	go func() { // ends when close(s.stop) runs
		defer close(s.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-t.C:
			case <-s.stop:
				s.sample()
				return
			}
		}
	}()
	return s
}

func (s *sampler) sample() (procStat, error) {
	if len(s.pids) == 0 {
		return procStat{}, nil
	}
	st, err := readProc(s.pids)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return st, err
	}
	s.peak = max(s.peak, st.rss)
	return st, nil
}

// finish stops polling and returns the peak RSS and the first error.
func (s *sampler) finish() (int64, error) {
	if len(s.pids) > 0 {
		close(s.stop)
	}
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.err
}
