package e2e

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestScreenshots renders the dashboard with six boards (one offline) in
// Chromium and takes the README's pictures: docs/dashboard.png (1200x700,
// light) and docs/dashboard-phone.png (390x844 at 2x, dark). It writes them
// into docs/ only with E2E_SCREENSHOTS=1 (make screenshots), elsewhere into
// a temporary directory, so that make test leaves the tree alone but still
// checks that the pictures can be taken.
func TestScreenshots(t *testing.T) {
	needChromium(t)
	dir := screenshotDir(t)
	cp := startControlPlane(t, cpOptions{})
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
