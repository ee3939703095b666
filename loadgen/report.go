package loadgen

import (
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is one run as stored in the CSV: the figures of a Result, latencies
// in milliseconds and memory in bytes.
type Row struct {
	Label      string
	Target     Target
	Boards     int
	Browsers   int
	Rate       float64
	WindowS    float64
	Published  int64
	Expected   int64
	Delivered  int64
	Lost       int64
	Duplicates int64
	Dropped    int
	EventsPerS float64
	P50, P90   float64
	P99, Max   float64
	Toggles    int // toggles confirmed to every browser
	// ToggleEachP50 and ToggleEachP99 are Result.ToggleEach: one sample
	// per browser per toggle (the CSVs' toggle_p50_ms and toggle_p99_ms
	// before toggle_last_* existed).
	ToggleEachP50 float64
	ToggleEachP99 float64
	CPUSeconds    float64
	PeakRSS       int64
	IdleBoard     float64
	IdleBrowse    float64
	// ReadP99 and ReadToggleEachP99 are P99 and ToggleEachP99 taken when
	// the load generator's reader got to the event instead of at socket
	// receipt (0 in CSVs written before they existed).
	ReadP99           float64
	ReadToggleEachP99 float64
	// TogglesSent and the ToggleLast figures (Result.ToggleLast, one
	// sample per toggle: until the last browser had it) are 0 in CSVs
	// written before they existed.
	TogglesSent       int
	ToggleLastP50     float64
	ToggleLastP99     float64
	ToggleLastMax     float64
	ReadToggleLastP50 float64
	ReadToggleLastP99 float64
	ReadToggleLastMax float64
}

var csvHeader = []string{"label", "target", "boards", "browsers", "rate_hz", "window_s",
	"published", "expected", "delivered", "lost", "duplicates", "dropped", "events_per_s",
	"p50_ms", "p90_ms", "p99_ms", "max_ms", "toggles", "toggle_each_p50_ms", "toggle_each_p99_ms",
	"cpu_s", "peak_rss_bytes", "idle_board_bytes", "idle_browser_bytes", "read_p99_ms", "read_toggle_each_p99_ms",
	"toggles_sent", "toggle_last_p50_ms", "toggle_last_p99_ms", "toggle_last_max_ms",
	"read_toggle_last_p50_ms", "read_toggle_last_p99_ms", "read_toggle_last_max_ms"}

// Widths of CSVs written by earlier versions: before the read_* columns,
// and before toggles_sent and the toggle_last columns. ReadCSV reads them
// (the missing figures are 0); AppendCSV may add rows of the current width
// to such a file.
const (
	csvFieldsV1 = 24
	csvFieldsV2 = 26
)

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Row returns the CSV row of r.
func (r *Result) Row() Row {
	return Row{Label: r.Label, Target: r.Target, Boards: r.Boards, Browsers: r.Browsers, Rate: r.Rate,
		WindowS: r.Window.Seconds(), Published: r.Published, Expected: r.Expected, Delivered: r.Delivered,
		Lost: r.Lost, Duplicates: r.Duplicates, Dropped: r.Dropped, EventsPerS: r.EventsPerS,
		P50: ms(r.Latency.Quantile(0.50)), P90: ms(r.Latency.Quantile(0.90)),
		P99: ms(r.Latency.Quantile(0.99)), Max: ms(r.Latency.Max()),
		Toggles: r.Toggles, ToggleEachP50: ms(r.ToggleEach.Quantile(0.50)), ToggleEachP99: ms(r.ToggleEach.Quantile(0.99)),
		CPUSeconds: r.CPU.Seconds(), PeakRSS: r.PeakRSS, IdleBoard: r.IdleBoardBytes, IdleBrowse: r.IdleBrowserBytes,
		ReadP99: ms(r.ReadLatency.Quantile(0.99)), ReadToggleEachP99: ms(r.ReadToggleEach.Quantile(0.99)),
		TogglesSent:   r.TogglesMax,
		ToggleLastP50: ms(r.ToggleLast.Quantile(0.50)), ToggleLastP99: ms(r.ToggleLast.Quantile(0.99)),
		ToggleLastMax:     ms(r.ToggleLast.Max()),
		ReadToggleLastP50: ms(r.ReadToggleLast.Quantile(0.50)), ReadToggleLastP99: ms(r.ReadToggleLast.Quantile(0.99)),
		ReadToggleLastMax: ms(r.ReadToggleLast.Max())}
}

func (w Row) record() []string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	return []string{w.Label, string(w.Target), i(int64(w.Boards)), i(int64(w.Browsers)), f(w.Rate), f(w.WindowS),
		i(w.Published), i(w.Expected), i(w.Delivered), i(w.Lost), i(w.Duplicates), i(int64(w.Dropped)), f(w.EventsPerS),
		f(w.P50), f(w.P90), f(w.P99), f(w.Max), i(int64(w.Toggles)), f(w.ToggleEachP50), f(w.ToggleEachP99),
		f(w.CPUSeconds), i(w.PeakRSS), f(w.IdleBoard), f(w.IdleBrowse), f(w.ReadP99), f(w.ReadToggleEachP99),
		i(int64(w.TogglesSent)), f(w.ToggleLastP50), f(w.ToggleLastP99), f(w.ToggleLastMax),
		f(w.ReadToggleLastP50), f(w.ReadToggleLastP99), f(w.ReadToggleLastMax)}
}

// AppendCSV appends rows to the CSV file at path, writing the header first
// when the file is new or empty.
func AppendCSV(path string, rows ...Row) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open csv: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat csv: %w", err)
	}
	w := csv.NewWriter(f)
	if st.Size() == 0 {
		_ = w.Write(csvHeader)
	}
	for _, r := range rows {
		_ = w.Write(r.record())
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("write csv %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close csv %s: %w", path, err)
	}
	return nil
}

// ReadCSV reads the rows of a CSV written by AppendCSV.
func ReadCSV(path string) ([]Row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open csv: %w", err)
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = -1 // a file AppendCSV added to may hold rows of earlier widths
	recs, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read csv %s: %w", path, err)
	}
	var rows []Row
	for n, rec := range recs {
		if n == 0 || (len(rec) > 0 && rec[0] == csvHeader[0]) {
			continue
		}
		if len(rec) != len(csvHeader) && len(rec) != csvFieldsV1 && len(rec) != csvFieldsV2 {
			return nil, fmt.Errorf("read csv %s: line %d has %d fields, want %d", path, n+1, len(rec), len(csvHeader))
		}
		var errs []error
		fl := func(i int) float64 {
			v, err := strconv.ParseFloat(rec[i], 64)
			errs = append(errs, err)
			return v
		}
		in := func(i int) int64 {
			v, err := strconv.ParseInt(rec[i], 10, 64)
			errs = append(errs, err)
			return v
		}
		r := Row{Label: rec[0], Target: Target(rec[1]), Boards: int(in(2)), Browsers: int(in(3)), Rate: fl(4),
			WindowS: fl(5), Published: in(6), Expected: in(7), Delivered: in(8), Lost: in(9), Duplicates: in(10),
			Dropped: int(in(11)), EventsPerS: fl(12), P50: fl(13), P90: fl(14), P99: fl(15), Max: fl(16),
			Toggles: int(in(17)), ToggleEachP50: fl(18), ToggleEachP99: fl(19), CPUSeconds: fl(20), PeakRSS: in(21),
			IdleBoard: fl(22), IdleBrowse: fl(23)}
		if len(rec) > csvFieldsV1 {
			r.ReadP99, r.ReadToggleEachP99 = fl(24), fl(25)
		}
		if len(rec) > csvFieldsV2 {
			r.TogglesSent = int(in(26))
			r.ToggleLastP50, r.ToggleLastP99, r.ToggleLastMax = fl(27), fl(28), fl(29)
			r.ReadToggleLastP50, r.ReadToggleLastP99, r.ReadToggleLastMax = fl(30), fl(31), fl(32)
		}
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("read csv %s: line %d: %w", path, n+1, err)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// WriteTable writes one run's figures as a human table.
func WriteTable(w io.Writer, r *Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := r.Row()
	fmt.Fprintf(tw, "workload\t%s (%s)\n", r.Label, r.Target)
	if r.Idle {
		fmt.Fprintf(tw, "connections\t%d boards, %d browsers\n", r.Boards, r.Browsers)
		fmt.Fprintf(tw, "memory per idle board\t%s\n", bytesStr(r.IdleBoardBytes))
		fmt.Fprintf(tw, "memory per idle browser\t%s\n", bytesStr(r.IdleBrowserBytes))
		fmt.Fprintf(tw, "peak RSS\t%s\n", bytesStr(float64(r.PeakRSS)))
		fmt.Fprintf(tw, "browsers dropped\t%d\n", r.Dropped)
		return tw.Flush()
	}
	fmt.Fprintf(tw, "load\t%d boards × %g Hz, %d browsers, %v window\n", r.Boards, r.Rate, r.Browsers, r.Window)
	fmt.Fprintf(tw, "delivered\t%d of %d expected (%.0f events/s)\n", r.Delivered, r.Expected, r.EventsPerS)
	fmt.Fprintf(tw, "lost\t%d\n", r.Lost)
	fmt.Fprintf(tw, "duplicates/out of order\t%d\n", r.Duplicates)
	fmt.Fprintf(tw, "browsers dropped\t%d\n", r.Dropped)
	fmt.Fprintf(tw, "latency p50/p90/p99/max\t%.2f / %.2f / %.2f / %.2f ms (at socket receipt)\n", row.P50, row.P90, row.P99, row.Max)
	fmt.Fprintf(tw, "  at the load generator's reader\t%.2f / %.2f / %.2f / %.2f ms\n",
		ms(r.ReadLatency.Quantile(0.5)), ms(r.ReadLatency.Quantile(0.9)), row.ReadP99, ms(r.ReadLatency.Max()))
	if r.TogglesMax > 0 {
		fmt.Fprintf(tw, "toggle until the last browser has it\t%.2f / %.2f / %.2f ms p50/p99/max (at socket receipt; %d of %d toggles confirmed to every browser%s)\n",
			row.ToggleLastP50, row.ToggleLastP99, row.ToggleLastMax, r.Toggles, r.TogglesMax, fewToggles(r.ToggleLast.Count()))
		fmt.Fprintf(tw, "  at the load generator's reader\t%.2f / %.2f / %.2f ms\n", row.ReadToggleLastP50, row.ReadToggleLastP99, row.ReadToggleLastMax)
		fmt.Fprintf(tw, "toggle, each browser's receipt p50/p99\t%.2f / %.2f ms (one sample per browser per toggle)\n", row.ToggleEachP50, row.ToggleEachP99)
		fmt.Fprintf(tw, "  at the load generator's reader\t%.2f / %.2f ms\n", ms(r.ReadToggleEach.Quantile(0.5)), row.ReadToggleEachP99)
		fmt.Fprintf(tw, "toggle legs p50/p99\tto the board's socket %.2f / %.2f ms (its handler %.2f / %.2f ms); from the board's answer to the last browser's socket %.2f / %.2f ms\n",
			ms(r.ToggleBoard.Quantile(0.5)), ms(r.ToggleBoard.Quantile(0.99)), ms(r.ToggleBoardRead.Quantile(0.5)), ms(r.ToggleBoardRead.Quantile(0.99)),
			ms(r.ToggleFanOut.Quantile(0.5)), ms(r.ToggleFanOut.Quantile(0.99)))
	}
	if r.ErrorEvts > 0 {
		fmt.Fprintf(tw, "error events\t%d\n", r.ErrorEvts)
	}
	fmt.Fprintf(tw, "CPU (window)\t%.2f s (%.0f %% of one core)\n", r.CPU.Seconds(), 100*r.CPU.Seconds()/r.Window.Seconds())
	fmt.Fprintf(tw, "peak RSS\t%s\n", bytesStr(float64(r.PeakRSS)))
	return tw.Flush()
}

// fewToggles warns when n toggles are too few for a p99 to be more than
// their maximum.
func fewToggles(n uint64) string {
	if n >= 100 {
		return ""
	}
	return fmt.Sprintf("; p99 of %d toggles = their max", n)
}

func bytesStr(b float64) string {
	switch {
	case math.Abs(b) >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case math.Abs(b) >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

// Best picks, for each (label, target, load), the best of repeated runs:
// the one with the fewest lost events, then the lowest p99 (for idle runs,
// the least memory per browser). Timing on a shared machine is noisy, so the
// better of several runs is the fairer figure.
func Best(rows []Row) []Row {
	type key struct {
		label, target string
		boards, brows int
		rate          float64
	}
	best := map[key]Row{}
	var order []key
	better := func(a, b Row) bool {
		if a.Lost != b.Lost {
			return a.Lost < b.Lost
		}
		if a.Rate == 0 && a.Published == 0 {
			return a.IdleBrowse+a.IdleBoard < b.IdleBrowse+b.IdleBoard
		}
		return a.P99 < b.P99
	}
	for _, r := range rows {
		k := key{r.Label, string(r.Target), r.Boards, r.Browsers, r.Rate}
		cur, ok := best[k]
		if !ok {
			order = append(order, k)
		}
		if !ok || better(r, cur) {
			best[k] = r
		}
	}
	out := make([]Row, 0, len(order))
	for _, k := range order {
		out = append(out, best[k])
	}
	return out
}

// metric is one figure of a comparison table.
type metric struct {
	name  string
	value func(Row) float64
	unit  string
	idle  bool           // an idle-memory figure, else a load figure
	has   func(Row) bool // nil: always measured; else false shows "-"
}

// toggleLast tells whether a row has the toggle_last figures (CSVs from
// before them, or runs without toggles, do not).
func toggleLast(r Row) bool { return r.TogglesSent > 0 }

var metrics = []metric{
	{"delivered events/s", func(r Row) float64 { return r.EventsPerS }, "", false, nil},
	{"latency p50", func(r Row) float64 { return r.P50 }, "ms", false, nil},
	{"latency p90", func(r Row) float64 { return r.P90 }, "ms", false, nil},
	{"latency p99", func(r Row) float64 { return r.P99 }, "ms", false, nil},
	{"latency max", func(r Row) float64 { return r.Max }, "ms", false, nil},
	{"p99 at the reader", func(r Row) float64 { return r.ReadP99 }, "ms", false, nil},
	{"events lost", func(r Row) float64 { return float64(r.Lost) }, "", false, nil},
	{"browsers dropped", func(r Row) float64 { return float64(r.Dropped) }, "", false, nil},
	{"toggle to last browser p50", func(r Row) float64 { return r.ToggleLastP50 }, "ms", false, toggleLast},
	{"toggle to last browser p99", func(r Row) float64 { return r.ToggleLastP99 }, "ms", false, toggleLast},
	{"toggle to last browser max", func(r Row) float64 { return r.ToggleLastMax }, "ms", false, toggleLast},
	{"toggle to last browser p99 at the reader", func(r Row) float64 { return r.ReadToggleLastP99 }, "ms", false, toggleLast},
	{"toggles sent", func(r Row) float64 { return float64(r.TogglesSent) }, "", false, toggleLast},
	{"toggles confirmed to every browser", func(r Row) float64 { return float64(r.Toggles) }, "", false, nil},
	{"toggle each receipt p50", func(r Row) float64 { return r.ToggleEachP50 }, "ms", false, nil},
	{"toggle each receipt p99", func(r Row) float64 { return r.ToggleEachP99 }, "ms", false, nil},
	{"toggle each receipt p99 at the reader", func(r Row) float64 { return r.ReadToggleEachP99 }, "ms", false, nil},
	{"CPU seconds", func(r Row) float64 { return r.CPUSeconds }, "s", false, nil},
	{"peak RSS", func(r Row) float64 { return float64(r.PeakRSS) / (1 << 20) }, "MiB", false, nil},
	{"memory/idle board", func(r Row) float64 { return r.IdleBoard / 1024 }, "KiB", true, nil},
	{"memory/idle browser", func(r Row) float64 { return r.IdleBrowse / 1024 }, "KiB", true, nil},
	{"peak RSS", func(r Row) float64 { return float64(r.PeakRSS) / (1 << 20) }, "MiB", true, nil},
}

// WriteComparison writes, for every workload in rows (best of repeats),
// each figure for Switchyard, Mosquitto and Node-RED and the ratios
// Switchyard/peer. A ratio above 1 is better for throughput, below 1 for
// everything else.
func WriteComparison(w io.Writer, rows []Row) error {
	rows = Best(rows)
	type key struct {
		label         string
		boards, brows int
		rate          float64
	}
	groups := map[key]map[Target]Row{}
	var order []key
	for _, r := range rows {
		k := key{r.Label, r.Boards, r.Browsers, r.Rate}
		if groups[k] == nil {
			groups[k] = map[Target]Row{}
			order = append(order, k)
		}
		groups[k][r.Target] = r
	}
	slices.SortStableFunc(order, func(a, b key) int {
		return cmp.Or(strings.Compare(a.label, b.label), cmp.Compare(a.rate, b.rate))
	})
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, k := range order {
		g := groups[k]
		idle := k.rate == 0
		if idle {
			fmt.Fprintf(tw, "%s: %d boards, %d browsers idle\t\t\t\t\t\t\n", k.label, k.boards, k.brows)
		} else {
			fmt.Fprintf(tw, "%s: %d boards × %g Hz, %d browsers\t\t\t\t\t\t\n", k.label, k.boards, k.rate, k.brows)
		}
		fmt.Fprintf(tw, "figure\tunit\tswitchyard\tmosquitto\tnode-red\tsy/mosq\tsy/nr\t\n")
		for _, m := range metrics {
			if m.idle != idle {
				continue
			}
			cell := func(t Target) (string, float64, bool) {
				r, ok := g[t]
				if !ok || (m.has != nil && !m.has(r)) {
					return "-", 0, false
				}
				v := m.value(r)
				return strconv.FormatFloat(v, 'f', 2, 64), v, true
			}
			sy, syv, syok := cell(Switchyard)
			mq, mqv, mqok := cell(Mosquitto)
			nr, nrv, nrok := cell(NodeRED)
			ratio := func(peer float64, ok bool) string {
				if !syok || !ok || peer == 0 {
					return "-"
				}
				return strconv.FormatFloat(syv/peer, 'f', 2, 64)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", m.name, m.unit, sy, mq, nr, ratio(mqv, mqok), ratio(nrv, nrok))
		}
		fmt.Fprintf(tw, "\t\t\t\t\t\t\t\n")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%s\n", toggleNote)
	return err
}

// toggleNote explains the two kinds of toggle figures under every
// comparison.
const toggleNote = `toggle to last browser: from the click until every browser has the new LED
state, one sample per toggle (with fewer than 100 toggles sent, its p99 is
their max); toggle each receipt: one sample per browser per toggle.`

// Knee returns, per target, the highest delivered events/s among the rows
// labelled label with p99 at most maxP99 ms and nothing lost or dropped.
func Knee(rows []Row, label string, maxP99 float64) map[Target]float64 {
	out := map[Target]float64{}
	for _, r := range rows {
		if r.Label != label || r.Lost > 0 || r.Dropped > 0 || r.P99 > maxP99 {
			continue
		}
		out[r.Target] = max(out[r.Target], r.EventsPerS)
	}
	return out
}

// WriteTimeline writes r's window second by second as CSV (see
// Result.Timeline).
func WriteTimeline(w io.Writer, r *Result) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"second", "start_unix_ms", "receipts", "over_3ms", "over_10ms", "worst_ms"})
	for i, s := range r.Timeline {
		_ = cw.Write([]string{strconv.Itoa(i), strconv.FormatInt(s.Start.UnixMilli(), 10), strconv.FormatInt(s.N, 10),
			strconv.FormatInt(s.Tail, 10), strconv.FormatInt(s.Slow, 10), strconv.FormatFloat(ms(s.Worst), 'f', 2, 64)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write timeline: %w", err)
	}
	return nil
}

// WriteToggleTrace writes r's toggles as CSV, one a line, times in
// milliseconds from each toggle's send (see ToggleSample); sent_unix_us
// places it on the machine's clock, to match with a server's logs.
func WriteToggleTrace(w io.Writer, r *Result) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"seq", "sent_unix_us", "board", "confirmed", "to_board_ms", "led_out_ms", "first_ms", "median_ms", "near_last_ms", "last_ms", "last_read_ms",
		"last_browser", "last_counts", "last_gap_ms", "with_counts", "confirmers"})
	f := func(d time.Duration) string { return strconv.FormatFloat(ms(d), 'f', 3, 64) }
	i := func(v int) string { return strconv.Itoa(v) }
	for _, s := range r.ToggleTrace {
		_ = cw.Write([]string{strconv.FormatInt(s.Seq, 10), strconv.FormatInt(s.Sent.UnixMicro(), 10), i(s.Board), strconv.FormatBool(s.Confirmed), f(s.ToBoard), f(s.LEDOut),
			f(s.First), f(s.Median), f(s.Near), f(s.Last), f(s.LastRead), i(s.LastBrowser), i(s.LastCounts), f(s.LastGap),
			i(s.WithCounts), i(s.Confirmers)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write toggle trace: %w", err)
	}
	return nil
}
