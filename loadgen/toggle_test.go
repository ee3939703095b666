package loadgen

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestToggleLastIsPerToggleMax feeds toggles whose receipts arrive from many
// browsers at once and checks that ToggleLast holds one sample per toggle,
// its slowest receipt (at the socket and at the reader), while the
// per-receipt figures, whose p99 hides those slowest receipts among the
// rest, stay apart.
func TestToggleLastIsPerToggleMax(t *testing.T) {
	const (
		toggles  = 50
		browsers = 200
		workers  = 8
	)
	us := time.Microsecond
	base := time.Unix(1_800_000_000, 0)
	var res Result
	var each, readEach Histogram
	var wantLast, wantReadLast []time.Duration
	for k := range toggles {
		ts := &toggleState{seq: int64(k + 1), sent: base.Add(time.Duration(k) * time.Second), rx: make([]toggleRx, browsers), done: make(chan struct{})}
		ts.remaining.Store(browsers)
		// Browser j gets it after (j+1)×20 µs, its reader 1 ms later;
		// the last browser of toggle k after 20 ms + k×100 µs.
		rx := func(j int) (at, read time.Duration) {
			at = time.Duration(j+1) * 20 * us
			if j == browsers-1 {
				at = 20*time.Millisecond + time.Duration(k)*100*us
			}
			return at, at + time.Millisecond
		}
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() { // ends when its share of browsers has confirmed
				defer wg.Done()
				for j := w; j < browsers; j += workers {
					at, read := rx(j)
					ts.traceRx(j, toggleRx{at: ts.sent.Add(at).UnixNano(), read: ts.sent.Add(read).UnixNano(), counts: j % 2})
					ts.confirm(ts.sent.Add(at), ts.sent.Add(read))
				}
			}()
		}
		wg.Wait()
		select {
		case <-ts.done:
		default:
			t.Fatalf("toggle %d: done not closed after every browser confirmed (%d remaining)", k, ts.remaining.Load())
		}
		ts.record(&res, newShared(make([]atomic.Int64, sharedLen(1, 1)), 1, 1), true)
		for j := range browsers {
			at, read := rx(j)
			each.Record(at)
			readEach.Record(read)
		}
		at, read := rx(browsers - 1)
		wantLast, wantReadLast = append(wantLast, at), append(wantReadLast, read)
	}

	if res.Toggles != toggles || res.ToggleLast.Count() != toggles || res.ReadToggleLast.Count() != toggles {
		t.Fatalf("toggles %d, last samples %d / %d: want %d each", res.Toggles, res.ToggleLast.Count(), res.ReadToggleLast.Count(), toggles)
	}
	var want, wantRead Histogram
	for i := range wantLast {
		want.Record(wantLast[i])
		wantRead.Record(wantReadLast[i])
	}
	for _, q := range []float64{0, 0.5, 0.99, 1} {
		if got, w := res.ToggleLast.Quantile(q), want.Quantile(q); got != w {
			t.Errorf("ToggleLast.Quantile(%g) = %v, want %v", q, got, w)
		}
		if got, w := res.ReadToggleLast.Quantile(q), wantRead.Quantile(q); got != w {
			t.Errorf("ReadToggleLast.Quantile(%g) = %v, want %v", q, got, w)
		}
	}
	if len(res.ToggleTrace) != toggles {
		t.Fatalf("%d traced toggles, want %d", len(res.ToggleTrace), toggles)
	}
	for k, s := range res.ToggleTrace {
		want := ToggleSample{Seq: int64(k + 1), Sent: base.Add(time.Duration(k) * time.Second), Confirmed: true, First: 20 * us, Median: 101 * 20 * us, Near: 198 * 20 * us, Last: wantLast[k], LastRead: wantReadLast[k],
			LastBrowser: browsers - 1, LastCounts: (browsers - 1) % 2, LastGap: -1, WithCounts: browsers / 2, Confirmers: browsers}
		if s != want {
			t.Errorf("toggle %d traced as %+v, want %+v", k, s, want)
		}
	}
	// 50 toggles: their p99 is their max, the slowest toggle's last receipt.
	if got, w := res.ToggleLast.Quantile(0.99), 20*time.Millisecond+49*100*us; got != w || res.ToggleLast.Max() != w {
		t.Errorf("ToggleLast p99 / max = %v / %v, want both %v", got, res.ToggleLast.Max(), w)
	}
	// One receipt in 200 is slow: the per-receipt p99 does not see it.
	if got, limit := each.Quantile(0.99), 5*time.Millisecond; got > limit {
		t.Errorf("per-receipt p99 = %v, want at most %v (the slow 0.5 %% is past it)", got, limit)
	}
	if res.ToggleLast.Quantile(0.5) <= each.Quantile(0.99) || res.ReadToggleLast.Quantile(0.5) <= readEach.Quantile(0.99) {
		t.Errorf("last-browser p50 %v (reader %v) not above per-receipt p99 %v (reader %v)",
			res.ToggleLast.Quantile(0.5), res.ReadToggleLast.Quantile(0.5), each.Quantile(0.99), readEach.Quantile(0.99))
	}
}

// TestUnconfirmedToggleCountsAsTheWait checks that a toggle some browser
// never confirmed is not left out of the tail: it counts as toggleWait.
func TestUnconfirmedToggleCountsAsTheWait(t *testing.T) {
	base := time.Unix(1_800_000_000, 0)
	var res Result
	sh := newShared(make([]atomic.Int64, sharedLen(1, 1)), 1, 1)
	ok := &toggleState{sent: base, done: make(chan struct{})}
	ok.remaining.Store(1)
	ok.confirm(base.Add(3*time.Millisecond), base.Add(4*time.Millisecond))
	ok.record(&res, sh, true)
	lost := &toggleState{sent: base, done: make(chan struct{})}
	lost.remaining.Store(2)
	lost.confirm(base.Add(time.Millisecond), base.Add(time.Millisecond))
	lost.record(&res, sh, false)

	if res.Toggles != 1 {
		t.Errorf("Toggles = %d, want 1 (the confirmed one)", res.Toggles)
	}
	if got := res.ToggleLast.Count(); got != 2 {
		t.Errorf("ToggleLast has %d samples, want 2", got)
	}
	if lo, hi := res.ToggleLast.Quantile(0), res.ToggleLast.Max(); lo != 3*time.Millisecond || hi != toggleWait {
		t.Errorf("ToggleLast min / max = %v / %v, want 3ms / %v", lo, hi, toggleWait)
	}
	if lo, hi := res.ReadToggleLast.Quantile(0), res.ReadToggleLast.Max(); lo != 4*time.Millisecond || hi != toggleWait {
		t.Errorf("ReadToggleLast min / max = %v / %v, want 4ms / %v", lo, hi, toggleWait)
	}
}
