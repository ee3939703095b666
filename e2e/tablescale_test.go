package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/css"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"
)

// tableBoards is how many boards TestTable1000 simulates.
const tableBoards = 1000

// tableWatchJS starts watching the table: rows added or removed, and the
// text node of every count cell as it is now, so that the test can tell
// whether counts were written in place.
const tableWatchJS = `(() => {
  const rows = document.getElementById("rows");
  const w = window.__tableWatch = { rowChanges: 0, cells: new Map() };
  for (const r of rows.querySelectorAll("tr[data-device]")) {
    const text = r.querySelector('[data-field="count"]').firstChild;
    w.cells.set(r.dataset.device, { row: r, text, count: Number(text.data) });
  }
  new MutationObserver((l) => { for (const m of l) w.rowChanges += m.addedNodes.length + m.removedNodes.length; }).observe(rows, { childList: true });
  return w.cells.size;
})()`

// tableCheckJS compares the table with what tableWatchJS saw: how many
// counts advanced (by 3 or more), how many rows or count nodes were
// replaced.
const tableCheckJS = `(() => {
  const w = window.__tableWatch;
  let advanced = 0, advanced3 = 0, replaced = 0;
  for (const [id, c] of w.cells) {
    const r = document.querySelector('#rows tr[data-device="' + id + '"]');
    if (r !== c.row || r.querySelector('[data-field="count"]').firstChild !== c.text) replaced++;
    if (Number(c.text.data) > c.count) advanced++;
    if (Number(c.text.data) >= c.count + 3) advanced3++;
  }
  return { advanced, advanced3, replaced, rowChanges: w.rowChanges };
})()`

// tableCheck is what tableCheckJS returns.
type tableCheck struct {
	Advanced   int `json:"advanced"`
	Advanced3  int `json:"advanced3"`
	Replaced   int `json:"replaced"`
	RowChanges int `json:"rowChanges"`
}

// notOnline lists, from the control plane's API, the boards it does not
// hold online (at most ten) and how many.
func notOnline(t *testing.T, cp *controlPlane) string {
	t.Helper()
	resp, err := http.Get(cp.url("/api/devices"))
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var devs []struct {
		ID     string `json:"id"`
		Online bool   `json:"online"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&devs); err != nil {
		return fmt.Sprintf("GET /api/devices: %s: %v", resp.Status, err)
	}
	var off []string
	for _, d := range devs {
		if !d.Online {
			off = append(off, d.ID)
		}
	}
	return fmt.Sprintf("%d boards, %d not online: %.10q", len(devs), len(off), off)
}

// TestTable1000 shows 1,000 boards counting at 1 Hz in the table: every
// row online in natural order (board-999 before board-1000), every count
// written in place (the same rows and text nodes; no row added or removed
// while counts tick), a toggle far down the table working. The page's
// costs are logged (go test -v), not asserted: they depend on the machine.
func TestTable1000(t *testing.T) {
	needChromium(t)
	if testing.Short() {
		t.Skip("1,000 boards: not in -short mode")
	}
	cp := startControlPlane(t, cpOptions{})
	began := time.Now()
	startFleet(t, cp.mqttAddr, tableBoards, time.Second)
	t.Logf("%d boards connected in %v", tableBoards, time.Since(began).Round(time.Millisecond))

	p := newPage(t, newBrowser(t), "1000 boards", pageOptions{})
	if _, err := chromedp.Call(p.ctx, performance.Enable, performance.EnableParams{}); err != nil {
		t.Fatalf("performance: %v", err)
	}
	p.open(cp.url("/"))
	p.do(chromedp.Click(chromedp.CSS(`[data-layout="table"]`)))
	began = time.Now()
	// DevTools' own mirrors of the DOM and the network are not the page's
	// cost (see TestScale500).
	for _, d := range []struct {
		name    string
		disable cdp.Command[cdp.Empty, cdp.Empty]
	}{{"DOM", dom.Disable}, {"CSS", css.Disable}, {"Network", network.Disable}} {
		if _, err := chromedp.Call(p.ctx, d.disable, cdp.Empty{}); err != nil {
			t.Fatalf("disable %s: %v", d.name, err)
		}
	}
	if err := p.tryWaitFor(fmt.Sprintf(`Array.from(document.querySelectorAll('#rows tr[data-device] [data-field="online"]')).filter(e => e.textContent === "online").length === %d`, tableBoards), 3*wait); err != nil {
		// Which rows, and what the control plane says of them: a board
		// offline there, or a page behind it.
		rows := evalJS[string](p, `JSON.stringify((() => { const rows = document.querySelectorAll('#rows tr[data-device]'); const off = Array.from(rows).filter(r => r.querySelector('[data-field="online"]').textContent !== "online"); return { rows: rows.length, notOnline: off.length, first: off.slice(0, 10).map(r => r.dataset.device + ": " + r.querySelector('[data-field="online"]').textContent) }; })())`)
		t.Fatalf("page %s: every row online: %v\nrows: %s\ncontrol plane: %s", p.name, err, rows, notOnline(t, cp))
	}
	t.Logf("table of %d rows online %v after the click", tableBoards, time.Since(began).Round(time.Millisecond))

	var want []string
	for i := 1; i <= tableBoards; i++ {
		want = append(want, scaleID(i))
	}
	if !evalJS[bool](p, jsShownAre(want...)) {
		t.Errorf("rows not in natural id order: %.200s…", evalJS[string](p, jsShownIDs))
	}

	evalJS[bool](p, `(__e2e.longTasks.splice(0), __e2e.longFrames.splice(0), true)`)
	if n := evalJS[int](p, tableWatchJS); n != tableBoards {
		t.Fatalf("watching %d rows, want %d", n, tableBoards)
	}
	m0 := metrics(t, p)
	watched := time.Now()
	// The measured window: counts go on, the toggle of a board far down the
	// table among them, until the first and the last board have counted
	// five more. (Its conditions are cheap: waitFor checks them on every
	// DOM change, and the page's costs are what is measured.)
	// (A click at the button's place: chromedp's queries need the DOM domain.)
	at := evalJS[point](p, `(b => { b.scrollIntoView({ block: "center" }); return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => {
  const x = b.getBoundingClientRect(); r({ x: x.left + x.width / 2, y: x.top + x.height / 2 }); }))); })(document.querySelector('#rows tr[data-device="board-777"] button[data-action="toggle"]'))`)
	p.do(chromedp.MouseClickXY(at.X, at.Y))
	p.waitFor("board-777 ON", `(r => r && /\bON\b/.test(r.led))(`+jsRow("board-777")+`)`, wait)
	last := scaleID(tableBoards)
	p.waitFor("board-001 and "+last+" counted five more", fmt.Sprintf(`[%q, %q].every(id => { const c = window.__tableWatch.cells.get(id); return Number(c.text.data) >= c.count + 5; })`, scaleID(1), last), 3*wait)
	elapsed := time.Since(watched)
	m1 := metrics(t, p)
	p.waitFor("every count advanced by 3", `(c => c.advanced3 === `+fmt.Sprint(tableBoards)+`)(`+tableCheckJS+`)`, 3*wait)
	check := evalJS[tableCheck](p, tableCheckJS)
	if check.Replaced != 0 || check.RowChanges != 0 {
		t.Errorf("in %v of counts: %d rows or count cells replaced, %d rows added or removed; want counts written in place",
			elapsed.Round(time.Second), check.Replaced, check.RowChanges)
	}

	tasks := evalJS[[]perfEntry](p, `__e2e.longTasks.splice(0)`)
	frames := evalJS[[]perfEntry](p, `__e2e.longFrames.splice(0)`)
	secs := elapsed.Seconds()
	d := func(name string) float64 { return m1[name] - m0[name] }
	t.Logf("%d rows at 1 Hz, watched %v:", tableBoards, elapsed.Round(time.Second))
	t.Logf("  long tasks (>50 ms): %d (%s); long animation frames: %d (%s)", len(tasks), stats(durations(tasks)), len(frames), stats(durations(frames)))
	t.Logf("  main thread busy %.1f%% (script %.1f%%, style %.1f%%, layout %.1f%%)",
		100*(d("TaskDuration")-d("DevToolsCommandDuration"))/secs, 100*d("ScriptDuration")/secs, 100*d("RecalcStyleDuration")/secs, 100*d("LayoutDuration")/secs)
	if n := d("LayoutCount"); n > 0 {
		t.Logf("  %.1f layouts/s, %.2f ms each", n/secs, 1000*d("LayoutDuration")/n)
	}
}
