package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// histSubBits sets the precision of a Histogram: each power of two is split
// into 1<<histSubBits linear buckets, so a recorded value is reported within
// 1/128 (0.8 %) of itself.
const histSubBits = 7

// histMaxExp bounds the recordable range: values up to 2^(histMaxExp+histSubBits+1)-1
// microseconds (about 38 hours); larger ones are clamped.
const histMaxExp = 29

const histBuckets = (histMaxExp+1)<<histSubBits + 1<<histSubBits

// Histogram is a log-linear (HDR-style) histogram of durations with
// microsecond resolution. The zero value is empty and ready to use. It is
// not safe for concurrent use: keep one per goroutine and Merge them.
type Histogram struct {
	counts []uint64
	total  uint64
	min    int64
	max    int64
	sum    float64
}

// bucketOf returns the bucket index of v (microseconds, v >= 0).
func bucketOf(v int64) int {
	u := uint64(v)
	if u < 1<<histSubBits {
		return int(u)
	}
	e := bits.Len64(u) - histSubBits - 1
	if e > histMaxExp {
		return histBuckets - 1
	}
	return e<<histSubBits + int(u>>uint(e))
}

// bucketHigh returns the largest value that falls in bucket i.
func bucketHigh(i int) int64 {
	if i < 1<<histSubBits {
		return int64(i)
	}
	e := i>>histSubBits - 1
	m := int64(i - e<<histSubBits)
	return (m+1)<<uint(e) - 1
}

// Record adds one observation; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	h.RecordMicros(d.Microseconds())
}

// RecordMicros adds one observation of v microseconds.
func (h *Histogram) RecordMicros(v int64) {
	if v < 0 {
		v = 0
	}
	if h.counts == nil {
		h.counts = make([]uint64, histBuckets)
	}
	h.counts[bucketOf(v)]++
	if h.total == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.total++
	h.sum += float64(v)
}

// Merge adds every observation of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, histBuckets)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.total += o.total
	h.sum += o.sum
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 { return h.total }

// Max returns the largest observation (exact), 0 when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) * time.Microsecond }

// Mean returns the mean observation, 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum/float64(h.total)) * time.Microsecond
}

// Quantile returns the value below or at which a fraction q (0..1) of the
// observations fall, rounded up to its bucket's upper bound (never above
// the largest observation), so the tail is never understated. It returns 0
// when the histogram is empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	if q <= 0 {
		return time.Duration(h.min) * time.Microsecond
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = max(rank, 1)
	rank = min(rank, h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := min(bucketHigh(i), h.max)
			v = max(v, h.min)
			return time.Duration(v) * time.Microsecond
		}
	}
	return h.Max()
}
