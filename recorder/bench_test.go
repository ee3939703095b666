package recorder

import (
	"context"
	"fmt"
	"testing"
	"time"

	"switchyard/history"
)

// discard is a Store that keeps nothing: the benchmarks below measure
// what the recorder costs the gateway's loop, not the database (see
// store's BenchmarkHistoryAppend for that).
type discard struct{ Store }

func (discard) AppendHistory(context.Context, []history.Event, []history.Point, []history.Entry) error {
	return nil
}

func (discard) PruneHistory(context.Context, time.Time) (int64, error) { return 0, nil }

// benchConfig flushes often enough that the queue never fills (a full
// queue drops, which costs less than queueing): the benchmarks report how
// many records were dropped, which should be 0.
var benchConfig = Config{FlushEvery: time.Millisecond}

// BenchmarkRecord is the cost of Record on the gateway's loop, with the
// flusher swapping the queue out beside it.
func BenchmarkRecord(b *testing.B) {
	r, err := New(benchConfig, discard{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	e := history.Event{At: time.Now(), Device: "board-0042", Kind: history.KindLED, Value: "ON", By: "alice"}
	for b.Loop() {
		r.Record(e)
	}
	b.ReportMetric(value(b, r.m.droppedEvents), "dropped")
}

// BenchmarkCount is the cost of Count for a fleet of 1,000 boards at
// 1 Hz: the sampler's map, a point a board a minute queued.
func BenchmarkCount(b *testing.B) {
	r, err := New(benchConfig, discard{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("board-%04d", i)
	}
	start := time.Now()
	i := 0
	for b.Loop() {
		r.Count(ids[i%len(ids)], int64(i), start.Add(time.Duration(i/len(ids))*time.Second))
		i++
	}
	b.ReportMetric(value(b, r.m.droppedPoints), "dropped")
}
