package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"
)

// jsText is a JavaScript condition: the element with id shows exactly text.
func jsText(id, text string) string {
	return fmt.Sprintf(`(e => e !== null && e.textContent.trim() === %q)(document.getElementById(%q))`, text, id)
}

// TestSingleBoardPage runs the ESP32 tutorial's page from
// examples/single-board, unchanged but for its ?ws= URL, against /ws/<id>:
// opened from disk (origin null) and served from another origin, both
// listed in http.allowed_origins. It shows the board's state on connect,
// follows its count, toggles it, and reconnects on its own after a
// control-plane restart.
func TestSingleBoardPage(t *testing.T) {
	needChromium(t)
	dir := filepath.Join("..", "examples", "single-board")
	file, err := filepath.Abs(filepath.Join(dir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	cp := startControlPlane(t, cpOptions{origins: []string{"null", srv.URL}})
	bd := startBoard(t, cp.mqttAddr, boardOptions{id: "esp32-1"})
	bd.tick()

	ws := url.QueryEscape("ws://" + cp.httpAddr + "/ws/esp32-1")
	browser := newBrowser(t)
	var pages []*page
	for _, tc := range []struct{ name, url string }{
		{"opened from disk", (&url.URL{Scheme: "file", Path: file}).String() + "?ws=" + ws},
		{"served from another origin", srv.URL + "/index.html?ws=" + ws},
	} {
		p := newPage(t, browser, tc.name, pageOptions{})
		p.open(tc.url)
		pages = append(pages, p)
	}

	if !t.Run("state shown on connect", func(t *testing.T) {
		for _, p := range pages {
			p.in(t).waitFor("LED OFF and count 1", jsText("ledStatus", "LED OFF")+" && "+jsText("count", "1"), wait)
		}
	}) {
		return
	}

	t.Run("count advances", func(t *testing.T) {
		for range 2 {
			n := strconv.FormatInt(bd.tick(), 10)
			for _, p := range pages {
				p.in(t).waitFor("count "+n, jsText("count", n), wait)
			}
		}
	})

	if !t.Run("the button toggles the board", func(t *testing.T) {
		for i, want := range []string{"ON", "OFF"} {
			pages[i].in(t).do(chromedp.Click(chromedp.ID("toggle")))
			if got := bd.waitCommand(t); got != "TOGGLE" {
				t.Errorf("board got led/set %q, want TOGGLE", got)
			}
			for _, p := range pages {
				p.in(t).waitFor("LED "+want, jsText("ledStatus", "LED "+want), wait)
			}
		}
	}) {
		return
	}

	t.Run("reconnects after a control-plane restart", func(t *testing.T) {
		connects := bd.connectCount()
		cp.stop()
		for _, p := range pages {
			p.in(t).waitFor("the page says it is reconnecting", `/reconnecting/i.test(document.getElementById("message").textContent)`, wait)
		}
		cp.startAgain()
		if err := bd.waitConnects(connects+1, wait); err != nil {
			t.Fatalf("board after the restart: %v", err)
		}
		n := strconv.FormatInt(bd.tick(), 10)
		for _, p := range pages {
			p.in(t).waitFor("connected again, count "+n, jsText("message", "")+" && "+jsText("count", n)+" && "+jsText("ledStatus", "LED OFF"), wait)
		}
		pages[0].in(t).do(chromedp.Click(chromedp.ID("toggle")))
		if got := bd.waitCommand(t); got != "TOGGLE" {
			t.Errorf("board got led/set %q after the restart, want TOGGLE", got)
		}
		for _, p := range pages {
			p.in(t).waitFor("LED ON after the restart", jsText("ledStatus", "LED ON"), wait)
		}
	})
}
