package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"switchyard/internal/testutil"
)

// needChromium returns the browser's path. Without one the test is
// skipped, except under CI, where it fails (see testutil.NeedCommand).
// Tests call it first, before they start anything.
func needChromium(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("chromium"); err != nil {
		if p, err := exec.LookPath("chromium-browser"); err == nil {
			return p // Ubuntu's name for it
		}
	}
	return testutil.NeedCommand(t, "chromium", "chromium")
}

// newBrowser starts a headless chromium with a fresh profile, closed at the
// end of the test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	chromiumPath := needChromium(t)
	// Not t.TempDir: chromium's helpers may still write in the profile
	// for a moment after it exits, and a failed removal must not fail the
	// test.
	dir, err := os.MkdirTemp("", "switchyard-e2e-chromium")
	if err != nil {
		t.Fatal(err)
	}
	out := &tailBuffer{max: 16 << 10}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(dir),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Every page in these tests is watched, none is in the background.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(out),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() {
			var lines []string
			for _, l := range strings.Split(out.String(), "\n") {
				if l != "" && !strings.Contains(l, "dbus") { // no system bus in containers: noise
					lines = append(lines, l)
				}
			}
			if len(lines) > 0 {
				t.Logf("chromium output (last lines):\n%s", strings.Join(lines, "\n"))
			}
		}
		os.RemoveAll(dir)
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium %s: %v\n%s", chromiumPath, err, out.String())
	}
	return ctx
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > w.max {
		w.b = append(w.b[:0], w.b[len(w.b)-w.max:]...)
	}
	return len(p), nil
}

func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}

// page is one tab in its own browser context (its own cookies, storage and
// cache), as a second person's browser is, bound to the test (or subtest)
// that its failures go to.
type page struct {
	t *testing.T
	*tab
}

// tab is the browser side of a page.
type tab struct {
	name string
	ctx  context.Context

	mu         sync.Mutex
	exceptions []string
}

// in returns p reporting to t, for use inside a subtest.
func (p *page) in(t *testing.T) *page { return &page{t: t, tab: p.tab} }

// pageOptions configures a new page.
type pageOptions struct {
	width, height int64  // viewport; 0: the window's 1280x900
	mobile        bool   // emulate a phone (touch, device scale 3)
	scheme        string // prefers-color-scheme: "light", "dark" or "" (default)
}

// newPage opens a tab in a new browser context with the test's
// instrumentation installed for every document it loads. An uncaught
// exception in the page fails the test.
func newPage(t *testing.T, browser context.Context, name string, opt pageOptions) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	p := &page{t: t, tab: &tab{name: name, ctx: ctx}}
	messages := chromedp.Console(ctx) // subscribes now; read below
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, e := range p.exceptions {
			t.Errorf("page %s: uncaught exception: %s", name, e)
		}
	})
	go func() { // ends when ctx is cancelled
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() {
				p.mu.Lock()
				p.exceptions = append(p.exceptions, fmt.Sprintf("%s (%s:%d)", m.Text, m.URL, m.Line+1))
				p.mu.Unlock()
			}
		}
	}()
	if _, err := chromedp.Call(ctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: instrumentJS}); err != nil {
		t.Fatalf("page %s: %v", name, err)
	}
	if opt.width > 0 {
		var emu []chromedp.EmulateViewportOption
		if opt.mobile {
			emu = append(emu, chromedp.EmulateScale(3), chromedp.EmulateMobile, chromedp.EmulateTouch)
		}
		p.do(chromedp.EmulateViewport(opt.width, opt.height, emu...))
	}
	if opt.scheme != "" {
		p.setScheme(opt.scheme)
	}
	return p
}

// setScheme emulates prefers-color-scheme.
func (p *page) setScheme(scheme string) {
	p.t.Helper()
	if _, err := chromedp.Call(p.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
	}); err != nil {
		p.t.Fatalf("page %s: emulate %s scheme: %v", p.name, scheme, err)
	}
}

// do runs actions with a deadline, failing the test on an error.
func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 2*wait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("page %s: %v", p.name, err)
	}
}

// click clicks the element sel at its centre, as chromedp.Click does, once
// a click there hits it. A table row is drawn with content-visibility:
// auto, so a row just added has its cells laid out only at the next frame;
// a click before then lands on the row, not on its link or button (seen in
// CI: mousedown on tr.row, mouseup on the link, no navigation). The check
// runs at each frame, up to wait.
func (p *page) click(sel string) {
	p.t.Helper()
	q, _ := json.Marshal(sel)
	hit := evalJS[bool](p, fmt.Sprintf(`new Promise((resolve) => {
  const until = performance.now() + %d;
  const check = () => {
    const e = document.querySelector(%s);
    if (e) {
      e.scrollIntoView({ block: "nearest" });
      const r = e.getBoundingClientRect();
      const at = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
      if (at && (at === e || e.contains(at))) { resolve(true); return; }
    }
    if (performance.now() > until) resolve(false);
    else requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
})`, wait.Milliseconds(), q))
	if !hit {
		p.t.Fatalf("page %s: %s is not where a click at its centre lands within %v\npage state: %s", p.name, sel, wait, p.state())
	}
	p.do(chromedp.Click(chromedp.CSS(sel)))
}

// open navigates to url and waits for the load event.
func (p *page) open(url string) {
	p.t.Helper()
	p.do(chromedp.Navigate(url))
}

// evalJS evaluates a JavaScript expression in p and decodes its value.
func evalJS[T any](p *page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 2*wait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("page %s: evaluate %s: %v", p.name, firstLine(expr), err)
	}
	return v
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// waitFor waits until the JavaScript expression cond is truthy in p,
// checking it on every DOM change (text included): no polling. On timeout
// it fails the test with what the page shows.
func (p *page) waitFor(what, cond string, timeout time.Duration) {
	p.t.Helper()
	if err := p.tryWaitFor(cond, timeout); err != nil {
		p.t.Fatalf("page %s: %s: %v\npage state: %s", p.name, what, err, p.state())
	}
}

// tryWaitFor is waitFor returning the failure.
func (p *page) tryWaitFor(cond string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(p.ctx, timeout+wait)
	defer cancel()
	expr := fmt.Sprintf(waitForJS, cond, timeout.Milliseconds())
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("not within %v", timeout)
	}
	return nil
}

// waitForJS resolves true once %[1]s holds, checked at once and on every
// DOM mutation (including text), or false after %[2]d ms.
const waitForJS = `new Promise((resolve) => {
  const check = () => { try { return !!(%[1]s); } catch (e) { return false; } };
  if (check()) { resolve(true); return; }
  let timer = 0;
  const mo = new MutationObserver(() => {
    if (check()) { mo.disconnect(); clearTimeout(timer); resolve(true); }
  });
  mo.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
  timer = setTimeout(() => { mo.disconnect(); resolve(check()); }, %[2]d);
})`

// state is a one-line description of the page for failure messages.
func (p *page) state() string {
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.__e2e ? __e2e.state() : document.body && document.body.innerText)`))
	if err != nil {
		return "(unavailable: " + err.Error() + ")"
	}
	return s
}

// card is what a dashboard card shows, read through the contract's data-*
// hooks.
type card struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	LED      string `json:"led"`
	Count    string `json:"count"`
	Online   string `json:"online"`
	LastSeen string `json:"lastSeen"`
	Hidden   bool   `json:"hidden"`
	Stale    bool   `json:"stale"`
	Disabled bool   `json:"disabled"`
	Label    string `json:"label"` // the toggle's aria-label
	Tag      string `json:"tag"`   // the toggle's element
	Firmware string `json:"firmware"`
	Update   string `json:"update"` // the update state; "" when the card says nothing of one
}

// ledState is "ON" or "OFF" as the card's LED text says (the contract: the
// text contains the word, any case), else "".
func (c card) ledState() string {
	if m := ledWord.FindStringSubmatch(c.LED); m != nil {
		return strings.ToUpper(m[1])
	}
	return ""
}

var ledWord = regexp.MustCompile(`(?i)\b(ON|OFF)\b`)

// isOnline and isOffline read the card's connection text.
func (c card) isOnline() bool  { return onlineWord.MatchString(c.Online) }
func (c card) isOffline() bool { return offlineWord.MatchString(c.Online) }

var (
	onlineWord  = regexp.MustCompile(`(?i)\bonline\b`)
	offlineWord = regexp.MustCompile(`(?i)\boffline\b`)
)

// countValue parses the card's count, -1 when it shows none.
func (c card) countValue() int64 {
	n, err := strconv.ParseInt(c.Count, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

func (c card) String() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// cards reads every card on the dashboard, in page order.
func (p *page) cards() []card {
	p.t.Helper()
	return evalJS[[]card](p, `__e2e.cards()`)
}

// cardByID reads the cards keyed by board id.
func (p *page) cardByID() map[string]card {
	p.t.Helper()
	m := map[string]card{}
	for _, c := range p.cards() {
		m[c.ID] = c
	}
	return m
}

// cardSel is the CSS selector of board id's card, optionally of an element
// inside it.
func cardSel(id, inner string) string {
	s := fmt.Sprintf(`article.card[data-device=%q]`, id)
	if inner != "" {
		s += " " + inner
	}
	return s
}

// jsCard is a JavaScript expression for board id's card as __e2e.card
// reads it (null when there is none).
func jsCard(id string) string {
	q, _ := json.Marshal(id)
	return fmt.Sprintf("__e2e.card(%s)", q)
}

// instrumentJS runs in every document before the page's own scripts. It
// records long tasks and long animation frames, snapshots the first render
// that shows a card, and gives the tests one way to read cards.
const instrumentJS = `(() => {
  if (window.__e2e) return;
  const e2e = window.__e2e = { longTasks: [], longFrames: [], firstCards: null };
  const observe = (type, fn) => {
    try { new PerformanceObserver((l) => l.getEntries().forEach(fn)).observe({ type, buffered: true }); } catch (e) {}
  };
  observe("longtask", (e) => e2e.longTasks.push({ start: e.startTime, duration: e.duration }));
  observe("long-animation-frame", (e) => e2e.longFrames.push({
    start: e.startTime, duration: e.duration, blocking: e.blockingDuration,
    script: e.renderStart ? e.renderStart - e.startTime : e.duration,
    raf: e.renderStart ? e.styleAndLayoutStart - e.renderStart : 0,
    render: e.renderStart ? e.startTime + e.duration - e.styleAndLayoutStart : 0,
  }));
  const read = (c) => {
    const f = (n) => { const e = c.querySelector('[data-field="' + n + '"]'); return e ? e.textContent.trim() : ""; };
    const b = c.querySelector('[data-action="toggle"]');
    return {
      id: c.getAttribute("data-device"), name: f("name"), led: f("led"), count: f("count"),
      online: f("online"), lastSeen: f("last-seen"), hidden: c.hidden, stale: c.hasAttribute("data-stale"),
      disabled: !b || b.disabled, label: b ? (b.getAttribute("aria-label") || "") : "", tag: b ? b.tagName : "",
      firmware: f("firmware"), update: f("update"),
    };
  };
  e2e.cards = () => Array.from(document.querySelectorAll("article.card[data-device]"), read);
  e2e.card = (id) => {
    const c = document.querySelector('article.card[data-device="' + CSS.escape(id) + '"]');
    return c ? read(c) : null;
  };
  e2e.conn = () => {
    const c = document.getElementById("conn");
    const t = document.getElementById("conn-text");
    return c && t ? { state: c.dataset.state || "", text: t.textContent.trim() } : null;
  };
  e2e.led = (c) => { const m = /\b(ON|OFF)\b/i.exec(c.led); return m ? m[1].toUpperCase() : ""; };
  e2e.online = (c) => (/\bonline\b/i.test(c.online) ? true : /\boffline\b/i.test(c.online) ? false : null);
  // The last input and navigation events, for a failure's page state: a
  // click that did not take shows where it landed.
  e2e.events = [];
  const describe = (t) => !t || !t.nodeName ? "" : t.nodeName.toLowerCase() + (t.id ? "#" + t.id : "") +
    (t.className && typeof t.className === "string" ? "." + t.className.trim().replace(/\s+/g, ".") : "") +
    (t.closest && t.closest("[data-device]") ? "@" + t.closest("[data-device]").dataset.device : "");
  for (const type of ["mousedown", "mouseup", "click", "submit", "hashchange", "popstate"]) {
    window.addEventListener(type, (ev) => {
      e2e.events.push(Math.round(performance.now()) + "ms " + type + " " + describe(ev.target) + " " + location.hash);
      if (e2e.events.length > 12) e2e.events.shift();
    }, true);
  }
  e2e.state = () => {
    const cards = e2e.cards();
    const where = { hash: location.hash, view: document.body ? document.body.dataset.view || "" : "", events: e2e.events };
    return cards.length
      ? { conn: e2e.conn(), cards: cards.slice(0, 20), ...where }
      : { text: document.body ? document.body.innerText.slice(0, 400) : "", ...where };
  };
  document.addEventListener("DOMContentLoaded", () => {
    const root = document.getElementById("cards");
    if (!root) return;
    const mo = new MutationObserver(() => {
      if (root.querySelector("[data-device]")) { e2e.firstCards = e2e.cards(); mo.disconnect(); }
    });
    mo.observe(root, { childList: true });
  });
})();`
