package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The list for fleets: natural order, filters by state and tag kept in the
// URL, and a dense table chosen per browser. The controls and the table are
// found through their ids and data attributes:
//
//	filters   #filter (text), #state-filter (online|offline|updating|failed), #tag-filter,
//	          #sort (id|name|state|led|count|seen|firmware|tags); the URL's ?q=&state=&tag=&sort=[-]col
//	layout    [data-layout="cards|table"] buttons (aria-pressed), kept in localStorage
//	table     #rows tr[data-device] with the cards' data-field hooks and data-action="toggle";
//	          header buttons [data-sort="<col>"] (data-dir="asc|desc" on the one in use)
//	a board   a.open[href="#board=<id>"] in its card or row

// jsShownIDs is a JavaScript expression: the ids of the boards the list
// shows (cards or rows, whichever the layout is), in page order.
const jsShownIDs = `Array.from(document.querySelectorAll('#boards-view [data-device]')).filter(e => !e.hidden).map(e => e.dataset.device).join(" ")`

// jsShownAre is a JavaScript condition: the list shows exactly ids, in
// this order.
func jsShownAre(ids ...string) string {
	q, _ := json.Marshal(strings.Join(ids, " "))
	return fmt.Sprintf(`%s === %s`, jsShownIDs, q)
}

// pick chooses value in the select sel as a person does: the value, then
// its change event.
func (p *page) pick(sel, value string) {
	p.t.Helper()
	q, _ := json.Marshal(sel)
	v, _ := json.Marshal(value)
	if !evalJS[bool](p, fmt.Sprintf(`(s => { if (!Array.from(s.options).some(o => o.value === %[2]s)) return false; s.value = %[2]s; s.dispatchEvent(new Event("change", { bubbles: true })); return true; })(document.querySelector(%[1]s))`, q, v)) {
		p.t.Fatalf("page %s: %s offers no %s", p.name, sel, value)
	}
}

// query returns the page's query string parameters.
func (p *page) query() url.Values {
	p.t.Helper()
	v, err := url.ParseQuery(strings.TrimPrefix(evalJS[string](p, `location.search`), "?"))
	if err != nil {
		p.t.Fatal(err)
	}
	return v
}

// reload reloads the page and waits until it is connected again.
func (p *page) reload() {
	p.t.Helper()
	p.do(chromedp.Reload())
	p.waitFor("connected after the reload", `__e2e.conn().state === "connected"`, wait)
}

// TestNaturalOrderAndStateFilter: ids and names sort naturally (bench-2
// before bench-10); the state filter shows the online, offline, updating
// or failed boards (updating and failed from the boards' update reports);
// filter and sort are in the URL and survive a reload; a toggle works in a
// filtered view.
func TestNaturalOrderAndStateFilter(t *testing.T) {
	needChromium(t)
	cp := startControlPlane(t, cpOptions{})
	boards := map[string]*board{}
	for _, o := range []boardOptions{
		{id: "bench-19", name: "Lamp 1"},
		{id: "bench-2", name: "Lamp 9"},
		{id: "bench-10", name: "Lamp 100"},
		{id: "bench-1", name: "Lamp 10"},
	} {
		boards[o.id] = startBoard(t, cp.mqttAddr, o)
	}
	p := newPage(t, newBrowser(t), "A", pageOptions{})
	p.open(cp.url("/"))
	p.waitFor("four boards online", `__e2e.cards().length === 4 && __e2e.cards().every(c => __e2e.online(c))`, wait)

	t.Run("natural order of ids and names", func(t *testing.T) {
		p := p.in(t)
		p.waitFor("sorted by id, naturally", jsShownAre("bench-1", "bench-2", "bench-10", "bench-19"), wait)
		p.pick("#sort", "name")
		p.waitFor("sorted by name, naturally", jsShownAre("bench-19", "bench-2", "bench-1", "bench-10"), wait)
		if got := p.query().Get("sort"); got != "name" {
			t.Errorf("URL sort=%q, want name", got)
		}
	})

	// bench-10 goes offline, bench-2 is downloading an update, bench-19's
	// update failed.
	boards["bench-10"].kill()
	boards["bench-2"].report(t, `{"job":"r1/1","state":"downloading","version":"2.0","running":"1.0","progress":40}`)
	boards["bench-19"].report(t, `{"job":"r1/1","state":"failed","version":"2.0","running":"1.0","progress":0,"error":"checksum"}`)
	p.waitFor("bench-10 offline, bench-2 updating, bench-19 failed", jsOnline("bench-10", false)+" && "+
		jsCardField("bench-2", "update", `^downloading`)+" && "+jsCardField("bench-19", "update", `^failed`), wait)

	t.Run("state filter", func(t *testing.T) {
		p := p.in(t)
		for _, tc := range []struct {
			state string
			want  []string // in name order
		}{
			{"offline", []string{"bench-10"}},
			{"updating", []string{"bench-2"}},
			{"failed", []string{"bench-19"}},
			{"online", []string{"bench-19", "bench-2", "bench-1"}},
			{"", []string{"bench-19", "bench-2", "bench-1", "bench-10"}},
		} {
			p.pick("#state-filter", tc.state)
			p.waitFor(fmt.Sprintf("state %q shows %v", tc.state, tc.want), jsShownAre(tc.want...), wait)
			if got := p.query().Get("state"); got != tc.state {
				t.Errorf("state %q: URL state=%q", tc.state, got)
			}
		}
		p.pick("#state-filter", "online")
		p.waitFor("the summary counts the shown boards", `/3 shown/.test(document.getElementById("summary").textContent)`, wait)
	})

	t.Run("the filtered view survives a reload", func(t *testing.T) {
		p := p.in(t)
		before := evalJS[string](p, `location.href`)
		p.reload()
		if got := evalJS[string](p, `location.href`); got != before {
			t.Errorf("URL after the reload %s, want %s", got, before)
		}
		p.waitFor("online boards only, by name, after the reload", jsShownAre("bench-19", "bench-2", "bench-1")+
			` && document.getElementById("state-filter").value === "online" && document.getElementById("sort").value === "name"`, wait)
		// A bookmark of the filtered view opens it as well.
		q := p.query()
		q.Set("state", "offline")
		p.open(cp.url("/?" + q.Encode()))
		p.waitFor("the bookmarked filter", jsShownAre("bench-10")+` && document.getElementById("state-filter").value === "offline"`, wait)
	})

	t.Run("a toggle in a filtered view", func(t *testing.T) {
		p := p.in(t)
		p.pick("#state-filter", "online")
		p.waitFor("online boards", jsShownAre("bench-19", "bench-2", "bench-1"), wait)
		p.do(chromedp.Click(toggleSel("bench-1")))
		if got := boards["bench-1"].waitCommand(t); got != "TOGGLE" {
			t.Errorf("led/set %q, want TOGGLE", got)
		}
		p.waitFor("bench-1 LED ON", jsLED("bench-1", "ON"), wait)
	})
}

// jsRow is a JavaScript expression: board id's row as {id, name, led,
// count, online, seen, firmware, tags, update, disabled}, or null.
func jsRow(id string) string {
	q, _ := json.Marshal(id)
	return fmt.Sprintf(`(r => r && (f => ({ id: r.dataset.device, name: f("name"), led: f("led"), count: f("count"), online: f("online"),
  seen: f("last-seen"), firmware: f("firmware"), tags: f("tags"), update: f("update"), disabled: r.querySelector('[data-action="toggle"]').disabled }))(
  n => { const e = r.querySelector('[data-field="' + n + '"]'); return e ? e.textContent.trim() : null; }))(document.querySelector('#rows tr[data-device=' + JSON.stringify(%s) + ']'))`, q)
}

// row is what jsRow reads.
type row struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	LED      string `json:"led"`
	Count    string `json:"count"`
	Online   string `json:"online"`
	Seen     string `json:"seen"`
	Firmware string `json:"firmware"`
	Tags     string `json:"tags"`
	Update   string `json:"update"`
	Disabled bool   `json:"disabled"`
}

// TestTableView: the table shows a row per board with the cards' hooks,
// its toggles work, a count changes its cell in place (the same row and
// text node), its columns sort both ways, and the choice of the table is
// kept by this browser across a reload (not by another browser).
func TestTableView(t *testing.T) {
	needChromium(t)
	cp := startControlPlane(t, cpOptions{})
	boards := map[string]*board{}
	for _, o := range []boardOptions{
		{id: "k-2", name: "Kitchen", count: 50, firmware: "devicefw 1.10"},
		{id: "k-10", count: 7, firmware: "devicefw 1.9", led: true},
		{id: "k-1", name: "Attic", count: 300},
	} {
		boards[o.id] = startBoard(t, cp.mqttAddr, o)
		boards[o.id].tick()
	}
	browser := newBrowser(t)
	p := newPage(t, browser, "A", pageOptions{})
	p.open(cp.url("/"))
	p.waitFor("three cards", `__e2e.cards().length === 3 && __e2e.cards().every(c => __e2e.online(c) && c.count !== "–")`, wait)

	p.do(chromedp.Click(chromedp.CSS(`[data-layout="table"]`)))
	p.waitFor("three rows and no cards", `document.querySelectorAll('#rows tr[data-device]').length === 3 && __e2e.cards().length === 0 && `+jsShown(`#table`)+
		` && document.querySelector('[data-layout="table"]').getAttribute("aria-pressed") === "true"`, wait)
	p.waitFor("rows in natural id order", jsShownAre("k-1", "k-2", "k-10"), wait)
	for id, want := range map[string]row{
		"k-1":  {ID: "k-1", Name: "Attic", LED: "OFF", Count: "301", Online: "online", Firmware: "e2e-sim"},
		"k-2":  {ID: "k-2", Name: "Kitchen", LED: "OFF", Count: "51", Online: "online", Firmware: "devicefw 1.10"},
		"k-10": {ID: "k-10", Name: "k-10", LED: "ON", Count: "8", Online: "online", Firmware: "devicefw 1.9"},
	} {
		got := evalJS[*row](p, jsRow(id))
		if got == nil {
			t.Errorf("no row for %s", id)
			continue
		}
		if got.Name != want.Name || got.LED != want.LED || got.Count != want.Count || got.Online != want.Online || got.Firmware != want.Firmware || got.Disabled {
			t.Errorf("row %s = %+v, want %+v and its toggle enabled", id, *got, want)
		}
	}

	t.Run("a count changes its cell in place", func(t *testing.T) {
		p := p.in(t)
		evalJS[bool](p, `(r => { window.__row = r; window.__countText = r.querySelector('[data-field="count"]').firstChild;
  window.__rowMutations = 0; new MutationObserver(l => { window.__rowMutations += l.length; }).observe(document.getElementById("rows"), { childList: true }); return true; })(document.querySelector('#rows tr[data-device="k-2"]'))`)
		boards["k-2"].tick()
		boards["k-2"].tick()
		p.waitFor("k-2 counts 53", `(r => r && r.count === "53")(`+jsRow("k-2")+`)`, wait)
		if !evalJS[bool](p, `document.querySelector('#rows tr[data-device="k-2"]') === window.__row && window.__row.querySelector('[data-field="count"]').firstChild === window.__countText && window.__countText.data === "53"`) {
			t.Error("the count was not written into the row's text node: the row or its cell was made anew")
		}
		if n := evalJS[int](p, `window.__rowMutations`); n != 0 {
			t.Errorf("%d rows added or removed for a count", n)
		}
	})

	t.Run("a toggle in a row", func(t *testing.T) {
		p := p.in(t)
		p.click(`#rows tr[data-device="k-1"] button[data-action="toggle"]`)
		if got := boards["k-1"].waitCommand(t); got != "TOGGLE" {
			t.Errorf("led/set %q, want TOGGLE", got)
		}
		p.waitFor("k-1 ON in its row", `(r => r && /\bON\b/.test(r.led))(`+jsRow("k-1")+`)`, wait)
	})

	t.Run("columns sort both ways", func(t *testing.T) {
		p := p.in(t)
		for _, tc := range []struct {
			col, dir string
			want     []string
		}{
			{"count", "asc", []string{"k-10", "k-2", "k-1"}},
			{"count", "desc", []string{"k-1", "k-2", "k-10"}},
			{"name", "asc", []string{"k-1", "k-10", "k-2"}},     // Attic, k-10, Kitchen
			{"firmware", "asc", []string{"k-10", "k-2", "k-1"}}, // devicefw 1.9, devicefw 1.10, e2e-sim
			{"led", "asc", []string{"k-1", "k-10", "k-2"}},      // ON (k-1 natural before k-10), OFF
		} {
			sel := chromedp.CSS(fmt.Sprintf(`#table [data-sort=%q]`, tc.col))
			p.do(chromedp.Click(sel))
			if evalJS[string](p, fmt.Sprintf(`document.querySelector('#table [data-sort=%q]').dataset.dir || ""`, tc.col)) != tc.dir {
				p.do(chromedp.Click(sel))
			}
			p.waitFor(fmt.Sprintf("sorted by %s %s", tc.col, tc.dir), jsShownAre(tc.want...)+
				fmt.Sprintf(` && document.querySelector('#table [data-sort=%q]').dataset.dir === %q`, tc.col, tc.dir), wait)
			want := tc.col
			if tc.dir == "desc" {
				want = "-" + want
			}
			if got := p.query().Get("sort"); got != want {
				t.Errorf("URL sort=%q, want %q", got, want)
			}
		}
	})

	t.Run("the table is kept by this browser", func(t *testing.T) {
		p := p.in(t)
		p.pick("#state-filter", "online")
		p.do(chromedp.Click(chromedp.CSS(`#table [data-sort="count"]`))) // ascending
		p.waitFor("sorted by count", jsShownAre("k-10", "k-2", "k-1"), wait)
		p.reload()
		p.waitFor("the table again, its sort and filter kept", `document.querySelectorAll('#rows tr[data-device]').length === 3 && __e2e.cards().length === 0 && `+
			jsShownAre("k-10", "k-2", "k-1")+` && document.getElementById("state-filter").value === "online"`, wait)

		other := newPage(t, browser, "B", pageOptions{}) // another browser's storage
		other.open(cp.url("/"))
		other.waitFor("cards in another browser", `__e2e.cards().length === 3 && document.querySelectorAll('#rows tr').length === 0`, wait)

		p.do(chromedp.Click(chromedp.CSS(`[data-layout="cards"]`)))
		p.waitFor("cards again", `__e2e.cards().length === 3 && document.querySelectorAll('#rows tr').length === 0`, wait)
		p.reload()
		p.waitFor("cards after the reload", `__e2e.cards().length === 3`, wait)
	})
}

// patchDevice sends PATCH /api/devices/<id> with body (as an anonymous
// local client: an operator) and fails t unless it answers 200.
func patchDevice(t *testing.T, cp *controlPlane, id, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPatch, cp.url("/api/devices/"+id), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PATCH /api/devices/%s %s = %d %s, want 200", id, body, resp.StatusCode, b)
	}
}

// TestTagFilter: the tag picker offers the tags of config.yaml's devices;
// picking one shows its boards (with the state filter too), is kept in the
// URL across a reload, and follows a retag (PATCH) live; the text filter
// finds tags; the table shows them.
func TestTagFilter(t *testing.T) {
	needChromium(t)
	cp := startControlPlane(t, cpOptions{extra: `devices:
  - {id: t-1, tags: [kitchen]}
  - {id: t-2, name: Fridge, tags: [kitchen, cold]}
  - {id: t-10, tags: [porch]}
  - {id: t-3}
`})
	boards := map[string]*board{}
	for _, id := range []string{"t-1", "t-2", "t-10", "t-3"} {
		boards[id] = startBoard(t, cp.mqttAddr, boardOptions{id: id})
	}
	p := newPage(t, newBrowser(t), "A", pageOptions{})
	p.open(cp.url("/"))
	p.waitFor("four boards online", `__e2e.cards().length === 4 && __e2e.cards().every(c => __e2e.online(c))`, wait)
	p.waitFor("the tags offered", `Array.from(document.querySelectorAll("#tag-filter option"), o => o.value).join(" ") === " cold kitchen porch"`, wait)
	p.waitFor("t-2's card shows its tags", `/cold kitchen/.test(document.querySelector('[data-device="t-2"] [data-field="tags"]').textContent)`, wait)

	p.pick("#tag-filter", "kitchen")
	p.waitFor("the kitchen boards", jsShownAre("t-1", "t-2"), wait)
	if got := p.query().Get("tag"); got != "kitchen" {
		t.Errorf("URL tag=%q, want kitchen", got)
	}

	boards["t-2"].kill()
	p.pick("#state-filter", "offline")
	p.waitFor("the offline kitchen board", jsShownAre("t-2"), wait)
	p.pick("#state-filter", "")

	p.reload()
	p.waitFor("the kitchen boards after a reload", jsShownAre("t-1", "t-2")+` && document.getElementById("tag-filter").value === "kitchen"`, wait)

	patchDevice(t, cp, "t-3", `{"tags":["kitchen"]}`)
	p.waitFor("t-3 joins the kitchen boards live", jsShownAre("t-1", "t-2", "t-3"), wait)
	patchDevice(t, cp, "t-1", `{"tags":[]}`)
	p.waitFor("t-1 leaves them", jsShownAre("t-2", "t-3"), wait)

	p.pick("#tag-filter", "")
	p.waitFor("every board", jsShownAre("t-1", "t-2", "t-3", "t-10"), wait)
	p.do(chromedp.SendKeys(chromedp.CSS("#filter"), "porch"))
	p.waitFor("the text filter finds a tag", jsShownAre("t-10"), wait)
	p.waitFor("the text filter kept in the URL", `new URLSearchParams(location.search).get("q") === "porch"`, wait)

	p.do(chromedp.Click(chromedp.CSS(`[data-layout="table"]`)))
	p.waitFor("the table shows t-10's tags", `(r => r && r.tags === "porch")(`+jsRow("t-10")+`)`, wait)
}
