package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// A board's page and the audit log in the browser, against the control
// plane's history and audit API. They are found through:
//
//	board page  #board-view (data-view="board"), opened at #board=<id> from a.open in a card or row;
//	            its live summary [data-device] with the cards' data-field hooks and data-action="toggle";
//	            #board-timeline rect[data-state="online|offline|unknown"] (data-from, data-to),
//	            #board-timeline li[data-why] (offline stretches), #board-uptime;
//	            #board-counts (data-points="<n>") polyline; #board-led, #board-commands,
//	            #board-firmware tr[data-kind] td[data-field="at|value|by|kind"];
//	            #board-back; the name and tags form #board-name #board-tags data-action="save-board"
//	audit       #audit-view (data-view="audit", #audit&actor=NAME), nav [data-nav="audit"] (admins);
//	            #audit-actor; #audit-rows tr[data-audit="<action>"][data-result] td[data-field=…]

// jsEvents is a JavaScript expression: the rows of the board page's table
// list (led, command or firmware) as [{value, by}].
func jsEvents(list string) string {
	return fmt.Sprintf(`Array.from(document.querySelectorAll('#board-%s tbody tr'), r => ({
  value: (r.querySelector('[data-field="value"]') || {}).textContent || "",
  by: (r.querySelector('[data-field="by"]') || {}).textContent || "" }))`, list)
}

// jsHasEvent is a JavaScript condition: the board page's list shows an
// event with the value matching re and by.
func jsHasEvent(list, re, by string) string {
	b, _ := json.Marshal(by)
	return fmt.Sprintf(`%s.some(e => %s.test(e.value) && e.by === %s)`, jsEvents(list), jsRegexp(re), b)
}

// boardPageAt is a JavaScript condition: the board page of id is shown
// and the list is not.
func boardPageAt(id string) string {
	return fmt.Sprintf(`location.hash === "#board=%s" && `, id) + jsShown(`#board-view`) + ` && !` + jsShown(`#boards-view`) +
		fmt.Sprintf(` && !!document.querySelector('#board-live [data-device=%q]')`, id)
}

// TestBoardPage: a board's page opens from its card and from a row, shows
// its live state with a working toggle, the toggle in its LED changes and
// commands with who made it (the logged-in user), its online timeline (an
// offline stretch with its reason for a killed board), its name and tags
// form; Back returns to the filtered list; a bookmark of the page opens it.
func TestBoardPage(t *testing.T) {
	needChromium(t)
	cp := startControlPlane(t, cpOptions{extra: updatesConfig(t)})
	bench := startBoard(t, cp.mqttAddr, boardOptions{id: "bench-7", name: "Bench", interval: time.Second})
	porch := startBoard(t, cp.mqttAddr, boardOptions{id: "porch"})
	startBoard(t, cp.mqttAddr, boardOptions{id: "bench-10"})
	browser := newBrowser(t)
	p := newPage(t, browser, "ada", pageOptions{width: 1280, height: 1400})
	p.login(cp, "ada", "pw-ada")
	p.open(cp.url("/?state=online&sort=name"))
	p.waitFor("the online boards", jsOnline("bench-7", true)+" && "+jsShownAre("bench-7", "bench-10", "porch"), wait)

	if !t.Run("open a card, toggle, see who did it", func(t *testing.T) {
		p := p.in(t)
		p.do(chromedp.Click(chromedp.CSS(cardSel("bench-7", "a.open"))))
		p.waitFor("bench-7's page", boardPageAt("bench-7"), wait)
		if got := p.query().Get("state"); got != "online" {
			t.Errorf("the board page's URL lost the list's filter: state=%q", got)
		}
		live := `#board-live [data-device="bench-7"]`
		p.waitFor("its live state", fmt.Sprintf(`(c => c && /\bonline\b/.test(c.querySelector('[data-field="online"]').textContent) && /\bOFF\b/.test(c.querySelector('[data-field="led"]').textContent) && !c.querySelector('[data-action="toggle"]').disabled)(document.querySelector(%q))`, live), wait)
		p.waitFor("online in the timeline up to now", `Array.from(document.querySelectorAll('#board-timeline rect[data-state="online"]')).some(r => Date.now() - Date.parse(r.dataset.to) < 60000)`, wait)

		p.do(chromedp.Click(chromedp.CSS(live + ` [data-action="toggle"]`)))
		if got := bench.waitCommand(t); got != "TOGGLE" {
			t.Errorf("led/set %q, want TOGGLE", got)
		}
		p.waitFor("LED ON on the page", fmt.Sprintf(`/\bON\b/.test(document.querySelector(%q).textContent)`, live+` [data-field="led"]`), wait)
		p.waitFor("the LED change by ada", jsHasEvent("led", `^ON$`, "ada"), wait)
		p.waitFor("the command by ada, applied", jsHasEvent("commands", `TOGGLE.*applied`, "ada"), wait)
	}) {
		return
	}

	t.Run("back returns to the filtered list", func(t *testing.T) {
		p := p.in(t)
		evalJS[bool](p, `(history.back(), true)`) // the browser's Back button
		p.waitFor("the list, filtered and sorted as before", jsShown(`#boards-view`)+` && !`+jsShown(`#board-view`)+` && location.hash === "" && `+
			jsShownAre("bench-7", "bench-10", "porch")+` && document.getElementById("state-filter").value === "online"`, wait)
	})

	t.Run("a row opens the page; a killed board's offline stretch", func(t *testing.T) {
		p := p.in(t)
		porch.kill()
		p.pick("#state-filter", "")
		p.do(chromedp.Click(chromedp.CSS(`[data-layout="table"]`)))
		p.waitFor("porch offline in its row", `(r => r && r.online === "offline")(`+jsRow("porch")+`)`, wait)
		p.click(`#rows tr[data-device="porch"] a.open`)
		p.waitFor("porch's page", boardPageAt("porch"), wait)
		p.waitFor("offline now, the connection lost", `Array.from(document.querySelectorAll('#board-timeline rect[data-state="offline"]')).some(r => Date.now() - Date.parse(r.dataset.to) < 60000) && `+
			`!!document.querySelector('#board-timeline li[data-why="will"]')`, wait)
		p.do(chromedp.Click(chromedp.CSS(`#board-back`)))
		p.waitFor("the table again", jsShown(`#table`)+` && !`+jsShown(`#board-view`), wait)
		p.do(chromedp.Click(chromedp.CSS(`[data-layout="cards"]`)))
	})

	t.Run("rename and retag on the page", func(t *testing.T) {
		p := p.in(t)
		p.open(cp.url("/#board=bench-10"))
		// The form is filled once the page knows the board (its id is the
		// name field's placeholder); a user types into it after that.
		p.waitFor("bench-10's page with its form filled", boardPageAt("bench-10")+" && "+jsShown(`#board-edit`)+
			` && document.getElementById("board-name").placeholder === "bench-10"`, wait)
		p.do(
			chromedp.SendKeys(chromedp.CSS(`#board-name`), "Bench ten"),
			chromedp.SendKeys(chromedp.CSS(`#board-tags`), "lab, Floor-2"),
			chromedp.Click(chromedp.CSS(`[data-action="save-board"]`)),
		)
		p.waitFor("saved, shown", `document.getElementById("board-edit-status").dataset.status === "ok" && `+
			`/Bench ten/.test(document.getElementById("board-title").textContent) && `+
			`document.querySelector('#board-live [data-field="tags"]').textContent === "floor-2 lab"`, wait)
		var d struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}
		getJSON(t, cp.url("/api/devices/bench-10"), &d)
		if d.Name != "Bench ten" || fmt.Sprint(d.Tags) != "[floor-2 lab]" {
			t.Errorf("GET /api/devices/bench-10 = %+v, want name Bench ten, tags [floor-2 lab]", d)
		}
		// A bookmarked page has no list behind it: its Back link opens the list.
		p.do(chromedp.Click(chromedp.CSS(`#board-back`)))
		p.waitFor("the list", jsShown(`#boards-view`)+` && `+jsShownAre("bench-7", "bench-10", "porch"), wait)

		viewer := newPage(t, browser, "vera", pageOptions{})
		viewer.login(cp, "vera", "pw-vera")
		viewer.open(cp.url("/#board=bench-10"))
		viewer.waitFor("bench-10's page", boardPageAt("bench-10"), wait)
		if evalJS[bool](viewer, jsShown(`#board-edit`)) {
			t.Error("a viewer is offered the name and tags form")
		}
	})

	t.Run("the count sparkline", func(t *testing.T) {
		p := p.in(t)
		// The control plane keeps one count a board a minute, written once
		// the minute is over: wait (polling, no event says so) until it has
		// one, then the page shows what the API has.
		var counts struct {
			Points [][2]any `json:"points"`
		}
		deadline := time.Now().Add(90 * time.Second)
		for len(counts.Points) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("GET /api/devices/bench-7/counts has no point 90 s after the board started counting")
			}
			time.Sleep(time.Second) // polling the API: no event says a count was written
			getJSON(t, cp.url("/api/devices/bench-7/counts?step=5m"), &counts)
		}
		p.open(cp.url("/#board=bench-7"))
		p.waitFor("a sparkline of the API's points", `Number(document.getElementById("board-counts").dataset.points) >= 1 && !!document.querySelector("#board-counts polyline")`, wait)
	})
}

// getJSON GETs url (as an anonymous local client) and decodes its JSON
// answer into v, failing t unless it is 200.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s, want 200", url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, b)
	}
}

// TestAuditPage: an admin's Audit page lists the logins (a failed one
// with the name tried, and a good one), filters them by actor (kept in the
// URL across a reload), and is not offered to a viewer.
func TestAuditPage(t *testing.T) {
	needChromium(t)
	cp := startControlPlane(t, cpOptions{extra: updatesConfig(t)})
	startBoard(t, cp.mqttAddr, boardOptions{id: "k1"})
	browser := newBrowser(t)

	intruder := newPage(t, browser, "mallory", pageOptions{})
	intruder.open(cp.url("/login"))
	intruder.do(
		chromedp.SetValue(chromedp.CSS(`input[name="name"]`), "mallory"),
		chromedp.SetValue(chromedp.CSS(`input[name="password"]`), "guess"),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitReady(chromedp.CSS(`.err`)),
	)

	p := newPage(t, browser, "ada", pageOptions{})
	p.login(cp, "ada", "pw-ada")
	p.waitFor("the Audit link", jsShown(`[data-nav="audit"]`), wait)
	p.do(chromedp.Click(chromedp.CSS(`[data-nav="audit"]`)))
	p.waitFor("the audit log instead of the boards", jsShown(`#audit-view`)+` && !`+jsShown(`#boards-view`)+` && location.hash === "#audit"`, wait)
	rowJS := func(actor, action, result string) string {
		return fmt.Sprintf(`Array.from(document.querySelectorAll('#audit-rows tr')).some(r => r.querySelector('[data-field="actor"]').textContent === %q && r.querySelector('[data-field="action"]').textContent === %q && r.querySelector('[data-field="result"]').textContent === %q && /\S/.test(r.querySelector('[data-field="remote"]').textContent) && !isNaN(Date.parse(r.querySelector('time').getAttribute("datetime"))))`, actor, action, result)
	}
	p.waitFor("ada's login", rowJS("ada", "login", "ok"), wait)
	p.waitFor("mallory's failed login", rowJS("mallory", "login", "denied")+" || "+rowJS("mallory", "login", "failed"), wait)

	p.do(chromedp.SendKeys(chromedp.CSS(`#audit-actor`), "ada"))
	p.waitFor("only ada's entries", `location.hash === "#audit&actor=ada" && document.querySelectorAll('#audit-rows tr').length > 0 && `+
		`Array.from(document.querySelectorAll('#audit-rows [data-field="actor"]')).every(e => e.textContent === "ada")`, wait)
	p.reload()
	p.waitFor("the filter kept across a reload", `document.getElementById("audit-actor").value === "ada" && document.querySelectorAll('#audit-rows tr').length > 0 && `+
		`Array.from(document.querySelectorAll('#audit-rows [data-field="actor"]')).every(e => e.textContent === "ada")`, wait)

	v := newPage(t, browser, "vera", pageOptions{})
	v.login(cp, "vera", "pw-vera")
	v.open(cp.url("/#audit"))
	v.waitFor("the boards", `__e2e.cards().length === 1`, wait)
	if !evalJS[bool](v, `!`+jsShown(`#audit-view`)+` && !`+jsShown(`[data-nav="audit"]`)) {
		t.Error("a viewer is offered the audit log")
	}
}
