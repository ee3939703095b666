package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestScreenshots renders the dashboard with six boards (one offline) in
// Chromium and takes the README's pictures: docs/dashboard.png (1200x700,
// light), docs/dashboard-phone.png (390x844 at 2x, dark), the table view
// docs/dashboard-table.png (1200x500, light) and a board's page
// docs/board.png (1200x1000, light). It writes them
// into docs/ only with E2E_SCREENSHOTS=1 (make screenshots), elsewhere into
// a temporary directory, so that make test leaves the tree alone but still
// checks that the pictures can be taken.
func TestScreenshots(t *testing.T) {
	needChromium(t)
	dir := screenshotDir(t)
	cp := startControlPlane(t, cpOptions{extra: `devices:
  - {id: garage, tags: [outside]}
  - {id: greenhouse, tags: [outside, pumps]}
  - {id: hallway, tags: [indoor, lights]}
  - {id: kitchen, tags: [indoor, lights]}
  - {id: porch, tags: [lights, outside]}
  - {id: workshop, tags: [indoor]}
`})
	boards := map[string]*board{}
	for _, o := range []boardOptions{
		{id: "garage", name: "Garage door", count: 5120, hardware: "esp32", firmware: "devicefw 0.3", ip: "192.168.1.31"},
		{id: "greenhouse", name: "Greenhouse pump", count: 88211, led: true, hardware: "esp32-c3", firmware: "devicefw 0.3", ip: "192.168.1.32"},
		{id: "hallway", name: "Hallway", count: 407, hardware: "rpi-zero-2w", firmware: "devicefw 0.3", ip: "192.168.1.40"},
		{id: "kitchen", name: "Kitchen light", count: 12873, led: true, hardware: "esp32", firmware: "devicefw 0.3", ip: "192.168.1.33"},
		{id: "porch", name: "Porch lamp", count: 964, hardware: "esp32", firmware: "devicefw 0.2", ip: "192.168.1.34"},
		{id: "workshop", name: "Workshop bench", count: 30118, hardware: "rpi-4", firmware: "devicefw 0.3", ip: "192.168.1.41"},
	} {
		boards[o.id] = startBoard(t, cp.mqttAddr, o)
		boards[o.id].tick()
	}
	boards["porch"].kill()

	browser := newBrowser(t)
	for _, tc := range []struct {
		file string
		opt  pageOptions
	}{
		{"dashboard.png", pageOptions{width: 1200, height: 700, scheme: "light"}},
		{"dashboard-phone.png", pageOptions{width: 390, height: 844, mobile: true, scheme: "dark"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			p := newPage(t, browser, tc.file, tc.opt)
			if tc.opt.mobile {
				p.do(chromedp.EmulateViewport(tc.opt.width, tc.opt.height, chromedp.EmulateScale(2), chromedp.EmulateMobile))
			}
			p.open(cp.url("/"))
			p.waitFor("six boards, the porch offline, counts shown",
				`__e2e.cards().length === 6 && __e2e.conn().state === "connected" && __e2e.cards().every(c => __e2e.online(c) === (c.id !== "porch") && (c.id === "porch" || c.count !== "–") && !c.stale)`, wait)
			scale := int64(1)
			if tc.opt.mobile {
				scale = 2
			}
			p.screenshot(filepath.Join(dir, tc.file), int(tc.opt.width*scale))
		})
	}

	t.Run("dashboard-table.png", func(t *testing.T) {
		const width, height = 1200, 500
		p := newPage(t, browser, "dashboard-table.png", pageOptions{width: width, height: height, scheme: "light"})
		p.open(cp.url("/"))
		p.do(chromedp.Click(chromedp.CSS(`[data-layout="table"]`)))
		p.waitFor("six rows, the porch offline, counts shown",
			`Array.from(document.querySelectorAll("#rows tr[data-device]")).filter(r => r.querySelector('[data-field="online"]').textContent === (r.dataset.device === "porch" ? "offline" : "online") && !r.hasAttribute("data-stale") && (r.dataset.device === "porch" || r.querySelector('[data-field="count"]').textContent !== "–")).length === 6`, wait)
		p.screenshot(filepath.Join(dir, "dashboard-table.png"), width)
	})

	t.Run("board.png", func(t *testing.T) {
		const width, height = 1200, 1000
		p := newPage(t, browser, "board.png", pageOptions{width: width, height: height, scheme: "light"})
		p.open(cp.url("/#board=kitchen"))
		live := `#board-live [data-device="kitchen"]`
		p.waitFor("the kitchen's page", jsShown(`#board-view`)+fmt.Sprintf(` && !document.querySelector(%q).disabled`, live+` [data-action="toggle"]`), wait)
		for _, want := range []string{"OFF", "ON"} { // the kitchen's light switched off and on again
			p.do(chromedp.Click(chromedp.CSS(live + ` [data-action="toggle"]`)))
			p.waitFor("LED "+want+" in its LED changes", jsHasEvent("led", "^"+want+"$", "anonymous"), wait)
		}
		p.waitFor("its timeline and commands", `!!document.querySelector('#board-timeline rect[data-state="online"]') && document.querySelectorAll("#board-commands tbody tr").length === 2`, wait)
		p.screenshot(filepath.Join(dir, "board.png"), width)
	})
}

// screenshotDir is where the screenshot tests write their pictures: docs/
// with E2E_SCREENSHOTS=1 (make screenshots), else a temporary directory.
func screenshotDir(t *testing.T) string {
	if os.Getenv("E2E_SCREENSHOTS") == "1" {
		return filepath.Join("..", "docs")
	}
	return t.TempDir()
}

// screenshot writes what p shows to path as a PNG, checking that it is
// one and width pixels wide.
func (p *page) screenshot(path string, width int) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		p.t.Fatalf("screenshot is no PNG: %v", err)
	}
	if got := img.Bounds().Dx(); got != width {
		p.t.Errorf("screenshot %d px wide, want %d", got, width)
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("wrote %s (%dx%d)", path, img.Bounds().Dx(), img.Bounds().Dy())
}

// TestScreenshotsAddBoard takes the README's picture of the Add board
// dialog showing what the API answered for a new board (its password,
// command and environment file), over a dashboard of four boards:
// docs/add-board.png (1200x900, light). The control plane names its
// broker by http.public_url, as on a LAN. See TestScreenshots for where it
// writes.
func TestScreenshotsAddBoard(t *testing.T) {
	needChromium(t)
	dir := screenshotDir(t)
	extra, _ := onboardConfig(t, "local")
	cp := startControlPlane(t, cpOptions{publicURL: "http://192.168.1.10:8080", extra: extra + `devices:
  - {id: garage, tags: [outside]}
  - {id: hallway, tags: [indoor, lights]}
  - {id: kitchen, tags: [indoor, lights]}
  - {id: workshop, tags: [indoor]}
`})
	for _, o := range []boardOptions{
		{id: "garage", name: "Garage door", count: 5120, hardware: "esp32", firmware: "devicefw 0.3", ip: "192.168.1.31"},
		{id: "hallway", name: "Hallway", count: 407, hardware: "rpi-zero-2w", firmware: "devicefw 0.3", ip: "192.168.1.40"},
		{id: "kitchen", name: "Kitchen light", count: 12873, led: true, hardware: "esp32", firmware: "devicefw 0.3", ip: "192.168.1.33"},
		{id: "workshop", name: "Workshop bench", count: 30118, hardware: "rpi-4", firmware: "devicefw 0.3", ip: "192.168.1.41"},
	} {
		startBoard(t, cp.mqttAddr, o).tick()
	}

	const width, height = 1200, 900
	browser := newBrowser(t)
	p := newPage(t, browser, "add-board.png", pageOptions{width: width, height: height, scheme: "light"})
	p.login(cp, "ada", "pw-ada")
	p.grantClipboard(cp)
	p.recordBoardAnswers()
	p.waitFor("four boards online, counts shown", `__e2e.cards().length === 4 && __e2e.cards().every(c => __e2e.online(c) && c.count !== "–" && !c.stale)`, wait)
	p.do(chromedp.Click(chromedp.CSS(`#add-board`)))
	p.addBoard("greenhouse", "Greenhouse pump", "outside pumps")
	a := p.boardAnswers(1)[0]
	if a.Status != 201 {
		t.Fatalf("POST /api/boards = %d %+v, want 201", a.Status, a.Body)
	}
	checkCredentials(t, p, a)
	p.waitFor("the greenhouse waiting behind the dialog", `!!document.querySelector('article.card[data-device="greenhouse"][data-waiting]')`, wait)
	p.do(chromedp.Click(chromedp.CSS(`#bd-result [data-copy="command"]`)))
	p.waitFor("the command copied", `document.querySelector('#bd-result [data-copy="command"] + .copy-note').dataset.outcome === "copied"`, wait)
	p.screenshot(filepath.Join(dir, "add-board.png"), width)
}
