package e2e

import (
	"context"
	"fmt"
	"math"
	"os"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/css"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/heapprofiler"
	"github.com/chromedp/cdproto/memory"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/systeminfo"
	"github.com/chromedp/chromedp"
)

// scaleBoards is how many boards TestScale500 simulates.
const scaleBoards = 500

// scaleDuration is how long TestScale500 measures the page:
// E2E_SCALE_DURATION (a Go duration, e.g. 5m), default 15 s.
func scaleDuration(t *testing.T) time.Duration {
	t.Helper()
	s := os.Getenv("E2E_SCALE_DURATION")
	if s == "" {
		return 15 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 5*time.Second {
		t.Fatalf("E2E_SCALE_DURATION=%q: want a duration of at least 5s, e.g. 5m", s)
	}
	return d
}

// scaleID is the id of simulated board i (1-based): board-001 … board-500.
func scaleID(i int) string { return fmt.Sprintf("board-%03d", i) }

// startFleet connects n boards counting every interval, concurrently, and
// closes them all (concurrently) at the end of the test.
func startFleet(t *testing.T, addr string, n int, interval time.Duration) {
	t.Helper()
	fleet := make([]*board, n)
	for i := range fleet {
		o := boardOptions{id: scaleID(i + 1), interval: interval}
		if i+1 == 250 {
			o.name = "Greenhouse pump"
		}
		fleet[i] = newBoard(addr, o)
	}
	t.Cleanup(func() {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 32)
		for _, b := range fleet {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				b.close()
			})
		}
		wg.Wait()
	})
	for _, b := range fleet {
		if err := b.waitConnects(1, 6*wait); err != nil {
			t.Fatalf("board %s: %v", b.id, err)
		}
	}
}

// measureJS adds __e2e.armClick(id): it scrolls board id's card into view,
// resolves to the middle of its toggle once that is rendered, and sets __e2e.click to a promise of
// the click's timings once the LED text changes: when the click event
// fired, when the dashboard wrote the new text (in its animation-frame
// batch), and the start of the next frame, by which the text is painted.
const measureJS = `(() => {
  const e2e = window.__e2e;
  if (e2e.armClick) return;
  e2e.inputs = [];
  try {
    new PerformanceObserver((l) => l.getEntries().forEach((e) => {
      if (e.name === "click") e2e.inputs.push({ name: e.name, start: e.startTime, duration: e.duration });
    })).observe({ type: "event", durationThreshold: 16, buffered: true });
  } catch (e) {}
  e2e.armClick = (id) => {
    const card = document.querySelector('article.card[data-device="' + CSS.escape(id) + '"]');
    const btn = card.querySelector('[data-action="toggle"]');
    const led = card.querySelector('[data-field="led"]');
    card.scrollIntoView({ block: "center" });
    const before = led.textContent;
    let clickAt = 0;
    btn.addEventListener("click", (ev) => { clickAt = ev.timeStamp; }, { once: true, capture: true });
    e2e.click = new Promise((resolve) => {
      const mo = new MutationObserver(() => {
        if (!clickAt || led.textContent === before) return;
        mo.disconnect();
        const domAt = performance.now();
        requestAnimationFrame((frameAt) => resolve({ dom: domAt - clickAt, paint: frameAt - clickAt }));
      });
      mo.observe(led, { subtree: true, childList: true, characterData: true });
      setTimeout(() => { mo.disconnect(); resolve(null); }, 5000);
    });
    // As a person does: scroll, let the page render, then click.
    return new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => {
      const r = btn.getBoundingClientRect();
      resolve({ x: r.left + r.width / 2, y: r.top + r.height / 2 });
    })));
  };
})()`

type point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// clickTiming is one click→paint measurement, in milliseconds.
type clickTiming struct {
	DOM   float64 `json:"dom"`
	Paint float64 `json:"paint"`
}

// perfEntry is a long task, a long animation frame or a slow input event.
type perfEntry struct {
	Name     string  `json:"name"`
	Start    float64 `json:"start"`
	Duration float64 `json:"duration"`
	Blocking float64 `json:"blocking"`
	Script   float64 `json:"script"` // long animation frames: tasks before rendering
	RAF      float64 `json:"raf"`    // animation-frame callbacks
	Render   float64 `json:"render"` // style, layout, paint
}

// heapSample is the page's memory after a forced garbage collection.
type heapSample struct {
	at        time.Duration
	heapMB    float64
	nodes     int64
	listeners int64
}

func (s heapSample) String() string {
	return fmt.Sprintf("t=%-5v heap %5.2f MB, %d DOM nodes, %d listeners", s.at.Round(time.Second), s.heapMB, s.nodes, s.listeners)
}

// sampleHeap collects garbage in the page, then reads its JavaScript heap
// and DOM counters through the DevTools protocol.
func sampleHeap(t *testing.T, p *page, at time.Duration) heapSample {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 2*wait)
	defer cancel()
	if _, err := chromedp.Call(ctx, heapprofiler.CollectGarbage, cdp.Empty{}); err != nil {
		t.Fatalf("collect garbage: %v", err)
	}
	h, err := chromedp.Call(ctx, runtime.GetHeapUsage, cdp.Empty{})
	if err != nil {
		t.Fatalf("heap usage: %v", err)
	}
	d, err := chromedp.Call(ctx, memory.GetDOMCounters, cdp.Empty{})
	if err != nil {
		t.Fatalf("DOM counters: %v", err)
	}
	return heapSample{at: at, heapMB: h.UsedSize / (1 << 20), nodes: d.Nodes, listeners: d.JsEventListeners}
}

// metrics reads Chromium's run-time metrics of the page (TaskDuration,
// ScriptDuration, LayoutCount, …).
func metrics(t *testing.T, p *page) map[string]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	res, err := chromedp.Call(ctx, performance.GetMetrics, cdp.Empty{})
	if err != nil {
		t.Fatalf("performance metrics: %v", err)
	}
	m := map[string]float64{}
	for _, x := range res.Metrics {
		m[x.Name] = x.Value
	}
	return m
}

// stats is a summary of a sample in milliseconds.
func stats(ms []float64) string {
	if len(ms) == 0 {
		return "none"
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	q := func(f float64) float64 { return s[int(math.Ceil(f*float64(len(s))))-1] }
	return fmt.Sprintf("median %.0f ms, p90 %.0f ms, max %.0f ms (n=%d)", q(0.5), q(0.9), s[len(s)-1], len(s))
}

// cpuTimes is the CPU time, in seconds, used so far by the test process,
// the control plane and chromium's processes (by type), so that the figures
// can be read against what else ran on the machine.
func cpuTimes(t *testing.T, p *page, cp *controlPlane) map[string]float64 {
	t.Helper()
	m := map[string]float64{
		"test process (boards)": procCPU(os.Getpid()),
		"controlplane":          procCPU(cp.pid()),
	}
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	res, err := chromedp.CallBrowser(ctx, systeminfo.GetProcessInfo, cdp.Empty{})
	if err != nil {
		t.Logf("chromium process info: %v", err)
		return m
	}
	for _, pi := range res.ProcessInfo {
		m["chromium "+pi.Type] += pi.CPUTime
	}
	return m
}

// procCPU reads a process's user and system time from /proc (Linux; 0
// elsewhere), in seconds.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces): state is the
	// first, utime the 12th and stime the 13th.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ is 100 on Linux
}

// TestScale500 opens the dashboard on 500 boards each counting at 1 Hz and
// measures it in Chromium for E2E_SCALE_DURATION (default 15 s): click to
// paint of toggles, long tasks and long animation frames, main-thread time,
// and the page's memory after forced garbage collections. It asserts only
// what holds on any machine: every board shown and online, counts moving,
// the filter finding a board, cards sorted by id, no unbounded growth of
// the heap or the DOM. The figures are logged (go test -v).
func TestScale500(t *testing.T) {
	needChromium(t)
	if testing.Short() {
		t.Skip("500 boards: not in -short mode")
	}
	duration := scaleDuration(t)
	cp := startControlPlane(t, cpOptions{})
	began := time.Now()
	startFleet(t, cp.mqttAddr, scaleBoards, time.Second)
	t.Logf("%d boards connected in %v", scaleBoards, time.Since(began).Round(time.Millisecond))

	browser := newBrowser(t)
	p := newPage(t, browser, "500 boards", pageOptions{})
	if _, err := chromedp.Call(p.ctx, performance.Enable, performance.EnableParams{}); err != nil {
		t.Fatalf("performance: %v", err)
	}
	began = time.Now()
	p.open(cp.url("/"))
	// What DevTools itself costs the page is not the dashboard's: turn off
	// the domains chromedp enables for its queries (DOM and CSS mirror every
	// text change, Network copies every WebSocket frame). From here on the
	// test uses only JavaScript and input events.
	for _, d := range []struct {
		name    string
		disable cdp.Command[cdp.Empty, cdp.Empty]
	}{{"DOM", dom.Disable}, {"CSS", css.Disable}, {"Network", network.Disable}} {
		if _, err := chromedp.Call(p.ctx, d.disable, cdp.Empty{}); err != nil {
			t.Fatalf("disable %s: %v", d.name, err)
		}
	}
	allOnline := fmt.Sprintf(`Array.from(document.querySelectorAll('article.card [data-field="online"]'), (e) => e.textContent).filter((s) => /\bonline\b/i.test(s)).length === %d`, scaleBoards)
	p.waitFor("every board online", allOnline, 3*wait)
	t.Logf("page load to %d cards online: %v", scaleBoards, time.Since(began).Round(time.Millisecond))
	evalJS[bool](p, measureJS+`, true`)
	loadTasks := evalJS[[]perfEntry](p, `__e2e.longTasks.splice(0)`)
	loadFrames := evalJS[[]perfEntry](p, `__e2e.longFrames.splice(0)`)
	t.Logf("during load: %d long tasks (%s), %d long animation frames", len(loadTasks), stats(durations(loadTasks)), len(loadFrames))

	startCounts := map[string]int64{}
	for _, c := range p.cards() {
		startCounts[c.ID] = c.countValue()
	}
	m0 := metrics(t, p)
	cpu0 := cpuTimes(t, p, cp)
	heap := []heapSample{sampleHeap(t, p, 0)}
	measured := time.Now()

	// The run: a toggle clicked every 2 s on boards spread over the list,
	// the heap sampled ten times (at most every 3 s).
	var clicks []clickTiming
	clickTick := time.NewTicker(2 * time.Second)
	defer clickTick.Stop()
	sampleTick := time.NewTicker(max(duration/10, 3*time.Second))
	defer sampleTick.Stop()
	end := time.After(duration)
	for i := 0; ; i++ {
		select {
		case <-clickTick.C:
			id := scaleID(1 + (i*137)%scaleBoards)
			at := evalJS[point](p, fmt.Sprintf(`__e2e.armClick(%q)`, id))
			p.do(chromedp.MouseClickXY(at.X, at.Y))
			ct := evalJS[*clickTiming](p, `__e2e.click`)
			if ct == nil {
				t.Errorf("toggle %s: the LED text did not change within 5 s of the click", id)
				continue
			}
			clicks = append(clicks, *ct)
			continue
		case <-sampleTick.C:
			heap = append(heap, sampleHeap(t, p, time.Since(measured)))
			continue
		case <-end:
		}
		break
	}
	elapsed := time.Since(measured)
	m1 := metrics(t, p)
	cpu1 := cpuTimes(t, p, cp)
	heap = append(heap, sampleHeap(t, p, elapsed))
	tasks := evalJS[[]perfEntry](p, `__e2e.longTasks.splice(0)`)
	frames := evalJS[[]perfEntry](p, `__e2e.longFrames.splice(0)`)
	inputs := evalJS[[]perfEntry](p, `__e2e.inputs.splice(0)`)

	// The figures.
	var dom, paint []float64
	for _, c := range clicks {
		dom = append(dom, c.DOM)
		paint = append(paint, c.Paint)
	}
	secs := elapsed.Seconds()
	t.Logf("%d boards at 1 Hz, measured %v:", scaleBoards, elapsed.Round(time.Second))
	t.Logf("  click → LED text written: %s", stats(dom))
	t.Logf("  click → next frame (painted): %s", stats(paint))
	t.Logf("  clicks taking ≥16 ms to the next paint (Event Timing, 8 ms steps): %d of %d (%s)", len(inputs), len(clicks), stats(durations(inputs)))
	t.Logf("  long tasks (>50 ms): %d (%s)", len(tasks), stats(durations(tasks)))
	var fTasks, fRAF, fRender float64
	for _, f := range frames {
		fTasks, fRAF, fRender = fTasks+f.Script, fRAF+f.RAF, fRender+f.Render
	}
	t.Logf("  long animation frames (>50 ms): %d (%s); their time: tasks %.0f ms, rAF callbacks %.0f ms, style/layout/paint %.0f ms",
		len(frames), stats(durations(frames)), fTasks, fRAF, fRender)
	d := func(name string) float64 { return m1[name] - m0[name] }
	t.Logf("  main thread busy %.1f%% of the time, DevTools commands excluded (script %.1f%%, style %.1f%%, layout %.1f%%, other incl. paint %.1f%%)",
		100*(d("TaskDuration")-d("DevToolsCommandDuration"))/secs, 100*d("ScriptDuration")/secs, 100*d("RecalcStyleDuration")/secs,
		100*d("LayoutDuration")/secs, 100*(d("TaskDuration")-d("DevToolsCommandDuration")-d("ScriptDuration")-d("RecalcStyleDuration")-d("LayoutDuration"))/secs)
	if n := d("LayoutCount"); n > 0 {
		t.Logf("  %.1f layouts/s, %.1f ms each; %.1f style recalcs/s", n/secs, 1000*d("LayoutDuration")/n, d("RecalcStyleCount")/secs)
	}
	var cpu []string
	for k, v := range cpu1 {
		if d := v - cpu0[k]; d > 0.01*secs {
			cpu = append(cpu, fmt.Sprintf("%s %.0f%%", k, 100*d/secs))
		}
	}
	slices.Sort(cpu)
	t.Logf("  CPU (one core = 100%%, %d cores): %s", goruntime.NumCPU(), strings.Join(cpu, ", "))
	for _, s := range heap {
		t.Logf("  %v", s)
	}

	// What must hold on any machine.
	first, last := heap[0], heap[len(heap)-1]
	if limit := 2*first.heapMB + 4; last.heapMB > limit {
		t.Errorf("JS heap grew from %.2f MB to %.2f MB over %v, want at most %.2f MB", first.heapMB, last.heapMB, elapsed.Round(time.Second), limit)
	}
	if limit := first.nodes + first.nodes/10 + 200; last.nodes > limit {
		t.Errorf("DOM grew from %d to %d nodes, want at most %d", first.nodes, last.nodes, limit)
	}
	if len(clicks) == 0 {
		t.Errorf("no click measured")
	}
	cards := p.cards()
	if len(cards) != scaleBoards {
		t.Fatalf("%d cards, want %d", len(cards), scaleBoards)
	}
	stuck := 0
	for i, c := range cards {
		if want := scaleID(i + 1); c.ID != want {
			t.Fatalf("card %d is %s, want %s: cards are sorted by id", i, c.ID, want)
		}
		if !c.isOnline() {
			t.Errorf("%s shows %q, want online", c.ID, c.Online)
		}
		if c.countValue() <= startCounts[c.ID] {
			stuck++
		}
	}
	if stuck > 0 {
		t.Errorf("%d of %d counts did not advance in %v", stuck, scaleBoards, elapsed.Round(time.Second))
	}
	if !strings.Contains(evalJS[string](p, `document.getElementById("summary-text").textContent`), fmt.Sprintf("%d boards", scaleBoards)) {
		t.Errorf("summary does not say %d boards", scaleBoards)
	}

	t.Run("filter finds a board", func(t *testing.T) {
		p := p.in(t)
		clear := chromedp.Evaluate[chromedp.Void](`(f => { f.value = ""; f.dispatchEvent(new Event("input", { bubbles: true })); f.focus(); })(document.getElementById("filter"))`)
		for _, tc := range []struct{ typed, want string }{
			{"board-421", "board-421"},
			{"greenhouse", "board-250"},
		} {
			p.do(clear, chromedp.KeyEvent(tc.typed)) // typed into the focused filter
			p.waitFor(fmt.Sprintf("only %s shown for %q", tc.want, tc.typed),
				fmt.Sprintf(`(v => v.length === 1 && v[0].id === %q)(__e2e.cards().filter((c) => !c.hidden))`, tc.want), wait)
			if got := evalJS[string](p, `document.getElementById("filter").value`); got != tc.typed {
				t.Errorf("filter holds %q, want %q", got, tc.typed)
			}
		}
		p.do(clear)
		p.waitFor("every board shown again", fmt.Sprintf(`__e2e.cards().filter((c) => !c.hidden).length === %d`, scaleBoards), wait)
	})
}

func durations(es []perfEntry) []float64 {
	var d []float64
	for _, e := range es {
		d = append(d, e.Duration)
	}
	return d
}
