package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// longID is the longest valid id, with no place to break a line.
var longID = strings.Repeat("x", 64)

// layoutJS measures what a phone user would notice: horizontal scrolling,
// boxes sticking out of the viewport, small toggles.
const layoutJS = `(() => {
  const root = document.documentElement;
  const width = root.clientWidth;
  const out = [];
  for (const e of document.querySelectorAll("header.top, header.top *, main, article.card, article.card *")) {
    const r = e.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.left < -0.5 || r.right > width + 0.5) {
      out.push((e.closest("[data-device]") ? e.closest("[data-device]").dataset.device + " " : "") + e.tagName.toLowerCase() + "." + e.className + " [" + Math.round(r.left) + ", " + Math.round(r.right) + "]");
    }
  }
  const small = [];
  for (const e of document.querySelectorAll('[data-action="toggle"], header.top button, header.top input, header.top select')) {
    const r = e.getBoundingClientRect();
    if (r.width > 0 && (r.width < 24 || r.height < 24)) small.push((e.id || e.getAttribute("aria-label") || e.textContent.trim()) + " " + Math.round(r.width) + "x" + Math.round(r.height));
  }
  return { scrollWidth: root.scrollWidth, clientWidth: width, outside: out, small,
    background: getComputedStyle(document.body).backgroundColor };
})()`

// contrastJS computes the WCAG contrast ratio of every text the dashboard
// shows against the background behind it (blending translucent ones).
const contrastJS = `(() => {
  const parse = (s) => { const m = s.match(/[\d.]+/g) || [0, 0, 0, 0]; return [+m[0], +m[1], +m[2], m.length > 3 ? +m[3] : 1]; };
  const blend = (top, under) => [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3])).concat(1);
  const background = (e) => {
    const layers = [];
    for (let n = e; n; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    let bg = [255, 255, 255, 1];
    for (let i = layers.length - 1; i >= 0; i--) bg = blend(layers[i], bg);
    return bg;
  };
  const lum = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const sel = ".brand, #conn-text, #summary-text, #filter, header.top button:not(:disabled), header.top select, .card-name, .card-id, [data-field=online], [data-field=led], .count-label, [data-field=count], [data-field=info], [data-field=firmware], [data-field=update], [data-field=command], .seen, button.toggle:not(:disabled)";
  const out = [];
  for (const e of document.querySelectorAll(sel)) {
    if (!e.getClientRects().length || !e.textContent.trim() && e.tagName !== "INPUT") continue;
    const bg = background(e);
    const fg = blend(parse(getComputedStyle(e).color), bg);
    const a = lum(fg), b = lum(bg);
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const card = e.closest("[data-device]");
    out.push({ what: (card ? card.dataset.device + " " : "") + (e.id ? "#" + e.id : e.tagName.toLowerCase() + "." + e.className), ratio });
  }
  return out;
})()`

// layout is what layoutJS returns.
type layout struct {
	ScrollWidth int      `json:"scrollWidth"`
	ClientWidth int      `json:"clientWidth"`
	Outside     []string `json:"outside"`
	Small       []string `json:"small"`
	Background  string   `json:"background"`
}

// contrast is one entry of contrastJS.
type contrast struct {
	What  string  `json:"what"`
	Ratio float64 `json:"ratio"`
}

// axNames returns the accessible names Chromium computed for every node of
// the page with role.
func axNames(t *testing.T, p *page, role string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	doc, err := chromedp.Run(ctx, chromedp.Evaluate[*runtime.RemoteObject](`document`))
	if err != nil {
		t.Fatal(err)
	}
	res, err := chromedp.Call(ctx, accessibility.QueryAXTree, accessibility.QueryAXTreeParams{ObjectID: doc.ObjectID, Role: role})
	if err != nil {
		t.Fatalf("query the accessibility tree: %v", err)
	}
	var names []string
	for _, n := range res.Nodes {
		if n.Ignored || n.Name == nil {
			continue
		}
		var s string
		if err := json.Unmarshal(n.Name.Value, &s); err != nil {
			t.Fatalf("accessible name %s: %v", n.Name.Value, err)
		}
		names = append(names, s)
	}
	return names
}

// TestPhoneAndAccessibility checks the dashboard on a 390 px wide phone in
// the light and the dark scheme: no horizontal scrolling (a 64-character id
// included), toggles that are real buttons with accessible names naming
// their board and big enough to tap, state given as text, readable
// contrast, and a toggle that works by touch.
func TestPhoneAndAccessibility(t *testing.T) {
	needChromium(t)
	cp := startControlPlane(t, cpOptions{})
	opts := []boardOptions{
		{id: "kitchen", name: "Kitchen light", led: true},
		{id: "bench", name: "Workshop bench power supply and soldering station"},
		{id: longID},
		{id: "shed", name: "Garden shed"},
	}
	boards := map[string]*board{}
	for _, o := range opts {
		boards[o.id] = startBoard(t, cp.mqttAddr, o)
		boards[o.id].tick()
	}
	boards["shed"].kill()

	browser := newBrowser(t)
	var backgrounds []string
	for i, scheme := range []string{"light", "dark"} {
		t.Run(scheme, func(t *testing.T) {
			p := newPage(t, browser, "phone "+scheme, pageOptions{width: 390, height: 844, mobile: true, scheme: scheme})
			p.open(cp.url("/"))
			p.waitFor("four boards, the shed offline", `__e2e.cards().length === 4 && __e2e.cards().every(c => __e2e.online(c) === (c.id !== "shed") && (c.id === "shed" || c.count === "1"))`, wait)

			l := evalJS[layout](p, layoutJS)
			if l.ScrollWidth > l.ClientWidth {
				t.Errorf("horizontal scroll: scrollWidth %d > clientWidth %d", l.ScrollWidth, l.ClientWidth)
			}
			if l.ClientWidth != 390 {
				t.Errorf("viewport %d px wide, want 390", l.ClientWidth)
			}
			for _, o := range l.Outside {
				t.Errorf("sticks out of the 390 px viewport: %s", o)
			}
			for _, s := range l.Small {
				t.Errorf("smaller than 24x24 px to tap: %s", s)
			}
			backgrounds = append(backgrounds, l.Background)

			lowest := contrast{Ratio: 21}
			for _, c := range evalJS[[]contrast](p, contrastJS) {
				if c.Ratio < lowest.Ratio {
					lowest = c
				}
				if c.Ratio < 4.5 {
					t.Errorf("%s scheme: %s has contrast %.2f:1, want at least 4.5:1", scheme, c.What, c.Ratio)
				}
			}

			t.Logf("%s scheme: lowest text contrast %.2f:1 (%s); scrollWidth %d, clientWidth %d", scheme, lowest.Ratio, lowest.What, l.ScrollWidth, l.ClientWidth)

			names := axNames(t, p, "button")
			t.Logf("buttons: %q", names)
			for _, c := range p.cards() {
				if c.Tag != "BUTTON" {
					t.Errorf("%s: toggle is a <%s>, want a <button>", c.ID, strings.ToLower(c.Tag))
				}
				want := c.Name // the name the card shows: info name, else id
				n := 0
				for _, name := range names {
					if strings.Contains(name, want) {
						n++
					}
				}
				if n != 1 {
					t.Errorf("%s: %d buttons with an accessible name naming %q, want 1 (names %q)", c.ID, n, want, names)
				}
				wantLED, wantOnline := onOff(boards[c.ID].ledOn()), c.ID != "shed"
				if c.ledState() != wantLED || c.isOnline() != wantOnline || c.isOffline() == wantOnline {
					t.Errorf("%s: the text says LED %q, connection %q; want LED %s, online=%t", c.ID, c.LED, c.Online, wantLED, wantOnline)
				}
			}
			if got := axNames(t, p, "searchbox"); len(got) != 1 || got[0] == "" {
				t.Errorf("filter: accessible names %q, want one non-empty", got)
			}

			if i == 0 {
				p.do(chromedp.Tap(toggleSel("bench")))
				if got := boards["bench"].waitCommand(t); got != "TOGGLE" {
					t.Errorf("tap on bench: led/set %q, want TOGGLE", got)
				}
				p.waitFor("bench LED ON after the tap", jsLED("bench", "ON"), wait)
			}
		})
	}
	if len(backgrounds) == 2 && backgrounds[0] == backgrounds[1] {
		t.Errorf("light and dark schemes have the same background %s", backgrounds[0])
	}
}
