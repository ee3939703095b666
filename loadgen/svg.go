package loadgen

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// WriteSVG draws latency (p50 dashed, p99 solid; log scale) against
// delivered events/s (log scale) for every load row, one colour per target,
// as a self-contained SVG.
func WriteSVG(w io.Writer, rows []Row) error {
	const (
		width, height = 760, 460
		left, right   = 70, 150
		top, bottom   = 40, 60
	)
	var pts []Row
	for _, r := range Best(rows) {
		if r.Rate > 0 && r.EventsPerS > 0 && r.P99 > 0 {
			pts = append(pts, r)
		}
	}
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, r := range pts {
		xmin, xmax = min(xmin, r.EventsPerS), max(xmax, r.EventsPerS)
		ymin, ymax = min(ymin, max(r.P50, 0.01)), max(ymax, r.P99)
	}
	if len(pts) == 0 {
		xmin, xmax, ymin, ymax = 1, 10, 0.1, 1
	}
	// Whole decades around the data.
	x0, x1 := math.Floor(math.Log10(xmin)), math.Ceil(math.Log10(xmax))
	y0, y1 := math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
	if x1 == x0 {
		x1++
	}
	if y1 == y0 {
		y1++
	}
	pw, ph := float64(width-left-right), float64(height-top-bottom)
	px := func(v float64) float64 { return float64(left) + (math.Log10(v)-x0)/(x1-x0)*pw }
	py := func(v float64) float64 { return float64(top) + ph - (math.Log10(max(v, 0.01))-y0)/(y1-y0)*ph }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15">End-to-end latency against load (board publish → browser)</text>`+"\n", left)
	for d := x0; d <= x1; d++ {
		x := px(math.Pow(10, d))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x, top, x, height-bottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, height-bottom+18, siLabel(math.Pow(10, d)))
	}
	for d := y0; d <= y1; d++ {
		y := py(math.Pow(10, d))
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, width-right, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s ms</text>`+"\n", left-6, y+4, trimFloat(math.Pow(10, d)))
	}
	if 100 >= math.Pow(10, y0) && 100 <= math.Pow(10, y1) {
		y := py(100)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#c00" stroke-dasharray="2,3"/>`+"\n", left, y, width-right, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" fill="#c00">100 ms</text>`+"\n", width-right+4, y+4)
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#444"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="middle">delivered events/s (all browsers)</text>`+"\n", float64(left)+pw/2, height-18)
	fmt.Fprintf(&b, `<text transform="translate(18 %.0f) rotate(-90)" text-anchor="middle">latency</text>`+"\n", float64(top)+ph/2)

	colours := map[Target]string{Switchyard: "#1f77b4", Mosquitto: "#2ca02c", NodeRED: "#d62728"}
	targets := []Target{Switchyard, Mosquitto, NodeRED}
	ly := top + 10
	for _, t := range targets {
		var s []Row
		for _, r := range pts {
			if r.Target == t {
				s = append(s, r)
			}
		}
		if len(s) == 0 {
			continue
		}
		slices.SortFunc(s, func(a, b Row) int { return cmp.Compare(a.EventsPerS, b.EventsPerS) })
		c := colours[t]
		for _, q := range []struct {
			v    func(Row) float64
			dash string
		}{{func(r Row) float64 { return r.P99 }, ""}, {func(r Row) float64 { return r.P50 }, ` stroke-dasharray="5,4"`}} {
			var p []string
			for _, r := range s {
				p = append(p, fmt.Sprintf("%.1f,%.1f", px(r.EventsPerS), py(q.v(r))))
			}
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(p, " "), c, q.dash)
			for _, r := range s {
				mark := c
				if r.Lost > 0 || r.Dropped > 0 {
					mark = "black" // lost events: past the knee
				}
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s %s: %.0f ev/s, p50 %.2f ms, p99 %.2f ms, lost %d</title></circle>`+"\n",
					px(r.EventsPerS), py(q.v(r)), mark, t, r.Label, r.EventsPerS, r.P50, r.P99, r.Lost)
			}
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/><text x="%d" y="%d">%s</text>`+"\n",
			width-right+10, ly, width-right+30, ly, c, width-right+34, ly+4, t)
		ly += 18
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">solid p99, dashed p50</text>`+"\n", width-right+10, ly+4)
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">black dot: events lost</text>`+"\n", width-right+10, ly+22)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("write svg: %w", err)
	}
	return nil
}

func siLabel(v float64) string {
	switch {
	case v >= 1e6:
		return trimFloat(v/1e6) + "M"
	case v >= 1e3:
		return trimFloat(v/1e3) + "k"
	}
	return trimFloat(v)
}

func trimFloat(v float64) string { return fmt.Sprintf("%g", v) }
