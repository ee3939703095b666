package loadgen

import (
	"os"
	"regexp"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	us := time.Microsecond
	tests := []struct {
		name   string
		values []int64 // microseconds
		q      float64
		want   time.Duration
		tol    float64 // relative
	}{
		{"empty", nil, 0.5, 0, 0},
		{"one value", []int64{42}, 0.99, 42 * us, 0},
		{"small values are exact", []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.5, 5 * us, 0},
		{"p90 of 1..10", []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.9, 9 * us, 0},
		{"p100 is the max", []int64{1, 5, 1_000_000}, 1, time.Second, 0},
		{"p0 is the min", []int64{300, 5000}, 0, 300 * us, 0},
		{"p50 of 1..100000", seq(1, 100_000), 0.5, 50_000 * us, 1.0 / 128},
		{"p99 of 1..100000", seq(1, 100_000), 0.99, 99_000 * us, 1.0 / 128},
		{"p999 of 1..100000", seq(1, 100_000), 0.999, 99_900 * us, 1.0 / 128},
		{"tail is not hidden", append(seq(1000, 1000+98), 250_000), 0.99, 1098 * us, 1.0 / 128},
		{"a 1% tail shows at p99.5", append(seq(1000, 1000+98), 250_000, 250_000), 0.995, 250 * time.Millisecond, 1.0 / 128},
		{"huge values clamp", []int64{1 << 50}, 0.5, time.Duration(1<<50) * us, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			for _, v := range tc.values {
				h.RecordMicros(v)
			}
			got := h.Quantile(tc.q)
			diff := float64(got - tc.want)
			if diff < 0 {
				diff = -diff
			}
			if diff > tc.tol*float64(tc.want) {
				t.Errorf("Quantile(%g) = %v, want %v (±%.2f%%)", tc.q, got, tc.want, 100*tc.tol)
			}
			if got < 0 || (len(tc.values) > 0 && got > h.Max()) {
				t.Errorf("Quantile(%g) = %v outside [0, max %v]", tc.q, got, h.Max())
			}
		})
	}
}

func seq(from, to int64) []int64 {
	var s []int64
	for v := from; v <= to; v++ {
		s = append(s, v)
	}
	return s
}

func TestHistogramMerge(t *testing.T) {
	var a, b, all Histogram
	for v := int64(0); v < 20_000; v += 7 {
		all.RecordMicros(v)
		if v%2 == 0 {
			a.RecordMicros(v)
		} else {
			b.RecordMicros(v)
		}
	}
	a.Merge(&b)
	a.Merge(&Histogram{})
	for _, q := range []float64{0, 0.5, 0.9, 0.99, 1} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("merged Quantile(%g) = %v, want %v", q, a.Quantile(q), all.Quantile(q))
		}
	}
	if a.Count() != all.Count() || a.Max() != all.Max() || a.Mean() != all.Mean() {
		t.Errorf("merged count/max/mean = %d/%v/%v, want %d/%v/%v", a.Count(), a.Max(), a.Mean(), all.Count(), all.Max(), all.Mean())
	}
}

func TestBucketBounds(t *testing.T) {
	// Every value lies in its bucket, within 1/128 of the bucket's top.
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 1000, 65_535, 1 << 20, 123_456_789} {
		i := bucketOf(v)
		hi := bucketHigh(i)
		if hi < v || float64(hi-v) > float64(v)/128 {
			t.Errorf("value %d: bucket %d top %d", v, i, hi)
		}
		if i > 0 && bucketHigh(i-1) >= v {
			t.Errorf("value %d: previous bucket %d top %d already holds it", v, i-1, bucketHigh(i-1))
		}
	}
}

func TestCSVRoundTripAndReport(t *testing.T) {
	path := t.TempDir() + "/r.csv"
	rows := []Row{
		{Label: "wall", Target: Switchyard, Boards: 100, Browsers: 1000, Rate: 1, WindowS: 10, Published: 1000, Expected: 1_000_000, Delivered: 1_000_000, EventsPerS: 100_000, P50: 1, P99: 9, ReadP99: 12, ReadToggleEachP99: 14,
			Toggles: 39, TogglesSent: 40, ToggleLastP50: 15, ToggleLastP99: 29, ToggleLastMax: 29, ReadToggleLastP50: 17, ReadToggleLastP99: 31, ReadToggleLastMax: 31},
		{Label: "wall", Target: Switchyard, Boards: 100, Browsers: 1000, Rate: 1, WindowS: 10, Published: 1000, Expected: 1_000_000, Delivered: 1_000_000, EventsPerS: 100_000, P50: 1, P99: 5},
		{Label: "wall", Target: Mosquitto, Boards: 100, Browsers: 1000, Rate: 1, WindowS: 10, Published: 1000, Expected: 1_000_000, Delivered: 999_000, Lost: 1000, EventsPerS: 99_900, P50: 2, P99: 10},
		{Label: "idle", Target: Switchyard, Boards: 10, Browsers: 10, IdleBoard: 4096, IdleBrowse: 8192},
	}
	if err := AppendCSV(path, rows[:2]...); err != nil {
		t.Fatal(err)
	}
	if err := AppendCSV(path, rows[2:]...); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCSV(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rows) {
		t.Fatalf("read %d rows, want %d", len(got), len(rows))
	}
	for i := range rows {
		if got[i] != rows[i] {
			t.Errorf("row %d = %+v, want %+v", i, got[i], rows[i])
		}
	}
	// A CSV from before the read_* columns still reads (they are 0).
	old := t.TempDir() + "/old.csv"
	os.WriteFile(old, []byte("label,target,boards,browsers,rate_hz,window_s,published,expected,delivered,lost,duplicates,dropped,events_per_s,p50_ms,p90_ms,p99_ms,max_ms,toggles,toggle_p50_ms,toggle_p99_ms,cpu_s,peak_rss_bytes,idle_board_bytes,idle_browser_bytes\n"+
		"wall,switchyard,100,1000,1.000,10.000,1000,1000000,1000000,0,0,0,100000.000,1.000,2.000,5.000,9.000,40,3.000,8.000,7.500,47000000,0.000,0.000\n"), 0o644)
	if o, err := ReadCSV(old); err != nil || len(o) != 1 || o[0].P99 != 5 || o[0].ToggleEachP99 != 8 || o[0].ReadP99 != 0 {
		t.Errorf("old CSV = %+v, %v; want one row, p99 5, toggle p99 8, no reader p99", o, err)
	}
	// So does one from before the toggle_last columns (they are 0), and
	// rows of the current width appended to it.
	v2 := t.TempDir() + "/v2.csv"
	os.WriteFile(v2, []byte("label,target,boards,browsers,rate_hz,window_s,published,expected,delivered,lost,duplicates,dropped,events_per_s,p50_ms,p90_ms,p99_ms,max_ms,toggles,toggle_p50_ms,toggle_p99_ms,cpu_s,peak_rss_bytes,idle_board_bytes,idle_browser_bytes,read_p99_ms,read_toggle_p99_ms\n"+
		"wall,switchyard,100,1000,1.000,10.000,1000,1000000,1000000,0,0,0,100000.000,1.000,2.000,5.000,9.000,40,3.000,8.000,7.500,47000000,0.000,0.000,6.000,10.000\n"), 0o644)
	if err := AppendCSV(v2, rows[0]); err != nil {
		t.Fatal(err)
	}
	want2 := Row{Label: "wall", Target: Switchyard, Boards: 100, Browsers: 1000, Rate: 1, WindowS: 10, Published: 1000, Expected: 1_000_000,
		Delivered: 1_000_000, EventsPerS: 100_000, P50: 1, P90: 2, P99: 5, Max: 9, Toggles: 40, ToggleEachP50: 3, ToggleEachP99: 8,
		CPUSeconds: 7.5, PeakRSS: 47_000_000, ReadP99: 6, ReadToggleEachP99: 10}
	if o, err := ReadCSV(v2); err != nil || len(o) != 2 || o[0] != want2 || o[1] != rows[0] {
		t.Errorf("CSV without toggle_last columns = %+v, %v; want %+v and %+v", o, err, want2, rows[0])
	} else {
		var out testWriter
		if err := WriteComparison(&out, o[:1]); err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`toggle to last browser p99 +ms +- `).Match(out) {
			t.Errorf("comparison of a row without toggle_last figures shows a figure:\n%s", out)
		}
	}
	best := Best(got)
	if len(best) != 3 || best[0].P99 != 5 {
		t.Errorf("Best = %+v, want 3 rows, the first with p99 5", best)
	}
	var out, svg testWriter
	if err := WriteComparison(&out, got); err != nil {
		t.Fatal(err)
	}
	if err := WriteSVG(&svg, got); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 || len(svg) == 0 {
		t.Error("empty report or chart")
	}
}

type testWriter []byte

func (w *testWriter) Write(p []byte) (int, error) { *w = append(*w, p...); return len(p), nil }
