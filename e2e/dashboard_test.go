package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// toggleSel is the CSS selector of board id's toggle button.
func toggleSel(id string) chromedp.CSS {
	return chromedp.CSS(cardSel(id, `button[data-action="toggle"]`))
}

// jsLED is a JavaScript condition: board id's card shows the LED state
// want ("ON" or "OFF").
func jsLED(id, want string) string {
	return fmt.Sprintf(`(c => c && __e2e.led(c) === %q)(%s)`, want, jsCard(id))
}

// jsOnline is a JavaScript condition: board id's card shows online (or
// offline) and its toggle enabled (or disabled) to match.
func jsOnline(id string, online bool) string {
	return fmt.Sprintf(`(c => c && __e2e.online(c) === %t && c.disabled === %t)(%s)`, online, !online, jsCard(id))
}

// jsCountAbove is a JavaScript condition: board id's count is above n.
func jsCountAbove(id string, n int64) string {
	return fmt.Sprintf(`(c => c && Number(c.count) > %d)(%s)`, n, jsCard(id))
}

// TestDashboardLive is the dashboard as two people use it at once: both see
// every board, counts advance, a toggle in one browser shows in the other
// within a second, a board that dies goes offline with its toggle disabled,
// a control-plane restart under the open pages is ridden out without a
// reload, and a page opened later shows every board's state at once.
func TestDashboardLive(t *testing.T) {
	needChromium(t)
	cp := startControlPlane(t, cpOptions{})
	opts := []boardOptions{
		{id: "kitchen", name: "Kitchen light", interval: time.Second},
		{id: "garage", interval: time.Second, led: true},
		{id: "porch", name: "Porch", interval: time.Second},
	}
	boards := map[string]*board{}
	for _, o := range opts {
		boards[o.id] = startBoard(t, cp.mqttAddr, o)
	}
	browser := newBrowser(t)
	a := newPage(t, browser, "A", pageOptions{})
	b := newPage(t, browser, "B", pageOptions{})
	pages := []*page{a, b}

	// wantState waits until p shows every board with the state the boards
	// themselves have: online or not, the LED, toggles enabled to match.
	wantState := func(t *testing.T, p *page, online map[string]bool) {
		t.Helper()
		for _, o := range opts {
			bd := boards[o.id]
			p.in(t).waitFor(fmt.Sprintf("%s online=%t LED %s", o.id, online[o.id], onOff(bd.ledOn())),
				jsOnline(o.id, online[o.id])+" && "+jsLED(o.id, onOff(bd.ledOn())), wait)
		}
	}
	allOnline := map[string]bool{"kitchen": true, "garage": true, "porch": true}

	if !t.Run("every board on both pages", func(t *testing.T) {
		for _, p := range pages {
			p.in(t).open(cp.url("/"))
			wantState(t, p, allOnline)
			got := p.in(t).cards()
			if len(got) != len(opts) {
				t.Errorf("page %s: %d cards, want %d: %v", p.name, len(got), len(opts), got)
			}
			for i, c := range got { // sorted by id, as /api/devices
				if want := []string{"garage", "kitchen", "porch"}[i]; c.ID != want {
					t.Errorf("page %s: card %d is %q, want %q", p.name, i, c.ID, want)
				}
			}
			if c := p.in(t).cardByID()["kitchen"]; c.Name != "Kitchen light" {
				t.Errorf("page %s: kitchen's name %q, want the info name %q", p.name, c.Name, "Kitchen light")
			}
		}
	}) {
		return
	}

	t.Run("counts advance", func(t *testing.T) {
		start := a.in(t).cardByID()
		for _, p := range pages {
			for _, o := range opts {
				from := start[o.id].countValue()
				p.in(t).waitFor(fmt.Sprintf("%s count above %d", o.id, from+1), jsCountAbove(o.id, from+1), 5*time.Second)
			}
		}
	})

	if !t.Run("a toggle in one browser shows in the other within a second", func(t *testing.T) {
		for _, step := range []struct {
			from, to *page
			id, want string
		}{
			{a, b, "kitchen", "ON"},
			{b, a, "kitchen", "OFF"},
			{b, a, "garage", "OFF"},
		} {
			began := time.Now()
			step.from.in(t).do(chromedp.Click(toggleSel(step.id)))
			if err := step.to.tryWaitFor(jsLED(step.id, step.want), time.Second); err != nil {
				t.Fatalf("toggle %s in page %s: page %s shows no LED %s within 1s of the click (%v)\npage state: %s",
					step.id, step.from.name, step.to.name, step.want, err, step.to.state())
			}
			t.Logf("toggle %s in page %s: LED %s on page %s after %v", step.id, step.from.name, step.want, step.to.name, time.Since(began).Round(time.Millisecond))
			step.from.in(t).waitFor(step.id+" LED "+step.want+" on the clicking page", jsLED(step.id, step.want), wait)
			if got := onOff(boards[step.id].ledOn()); got != step.want {
				t.Errorf("board %s: LED %s, want %s", step.id, got, step.want)
			}
		}
	}) {
		return
	}

	if !t.Run("a killed board goes offline, its toggle disabled", func(t *testing.T) {
		boards["garage"].kill()
		for _, p := range pages {
			p.in(t).waitFor("garage offline with its toggle disabled", jsOnline("garage", false), wait)
			wantState(t, p, map[string]bool{"kitchen": true, "porch": true})
		}
	}) {
		return
	}

	if !t.Run("a control-plane restart is ridden out without a reload", func(t *testing.T) {
		for _, p := range pages {
			evalJS[bool](p.in(t), `window.__e2eNoReload = true`)
		}
		before := a.in(t).cardByID()
		connects := map[string]int{}
		for id, bd := range boards {
			connects[id] = bd.connectCount()
		}
		cp.stop()
		for _, p := range pages {
			p.in(t).waitFor("the page says it is reconnecting", `/reconnecting/i.test(__e2e.conn().text)`, wait)
			p.in(t).waitFor("every toggle disabled while disconnected", `__e2e.cards().every(c => c.disabled)`, wait)
		}
		// While the control plane is down, someone presses the porch's
		// button: the board publishes its LED when it reconnects.
		boards["porch"].setLocal(true)
		began := time.Now()
		cp.startAgain()
		for _, id := range []string{"kitchen", "porch"} {
			if err := boards[id].waitConnects(connects[id]+1, wait); err != nil {
				t.Fatalf("board %s after the restart: %v", id, err)
			}
		}
		for _, p := range pages {
			p.in(t).waitFor("connected again", `__e2e.conn().state === "connected" && !/reconnecting/i.test(__e2e.conn().text)`, wait)
			t.Logf("page %s connected %v after the control plane started again", p.name, time.Since(began).Round(time.Millisecond))
			wantState(t, p, map[string]bool{"kitchen": true, "porch": true})
			p.in(t).waitFor("no stale card", `__e2e.cards().every(c => !c.stale)`, wait)
			for _, id := range []string{"kitchen", "porch"} {
				p.in(t).waitFor(id+" counting again", jsCountAbove(id, before[id].countValue()), wait)
			}
			if !evalJS[bool](p.in(t), `window.__e2eNoReload === true`) {
				t.Errorf("page %s was reloaded", p.name)
			}
		}
		// The porch changed while nobody was connected; the toggle works
		// on the new control plane too.
		a.in(t).do(chromedp.Click(toggleSel("porch")))
		b.in(t).waitFor("porch toggled after the restart", jsLED("porch", "OFF"), wait)
	}) {
		return
	}

	t.Run("a page opened later shows every board at once", func(t *testing.T) {
		c := newPage(t, browser, "C", pageOptions{})
		c.open(cp.url("/"))
		c.waitFor("the first render with cards", `__e2e.firstCards !== null`, wait)
		first := evalJS[[]card](c, `__e2e.firstCards`)
		got := map[string]card{}
		for _, cd := range first {
			got[cd.ID] = cd
		}
		for _, tc := range []struct {
			id     string
			online bool
		}{
			{"garage", false},
			{"kitchen", true},
			{"porch", true},
		} {
			cd, ok := got[tc.id]
			if !ok {
				t.Errorf("first render: no card for %s, got %v", tc.id, first)
				continue
			}
			wantLED := onOff(boards[tc.id].ledOn())
			if cd.isOnline() != tc.online || cd.isOffline() == tc.online || cd.ledState() != wantLED || cd.Disabled == tc.online {
				t.Errorf("first render of %s = %v, want online=%t, LED %s, toggle enabled=%t", tc.id, cd, tc.online, wantLED, tc.online)
			}
			if tc.online && cd.countValue() < 0 {
				t.Errorf("first render of %s shows no count: %v", tc.id, cd)
			}
		}
	})
}
