package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestSortByName: cards come sorted by id; the sort control orders them by
// name, and back.
func TestSortByName(t *testing.T) {
	needChromium(t)
	cp := startControlPlane(t, cpOptions{})
	startBoard(t, cp.mqttAddr, boardOptions{id: "a1", name: "Zebra"})
	startBoard(t, cp.mqttAddr, boardOptions{id: "m5", name: "Mango"})
	startBoard(t, cp.mqttAddr, boardOptions{id: "z9", name: "Apple"})
	p := newPage(t, newBrowser(t), "A", pageOptions{})
	p.open(cp.url("/"))
	order := func() string {
		var s string
		for _, c := range p.cards() {
			s += c.ID + " "
		}
		return s
	}
	p.waitFor("three boards named", `document.querySelectorAll('[data-device] [data-field="name"]').length === 3 && `+
		`document.querySelector('[data-device="z9"] [data-field="name"]').textContent === "Apple"`, wait)
	if got := order(); got != "a1 m5 z9 " {
		t.Errorf("default order %q, want by id", got)
	}
	pick := func(mode string) { // as a person choosing in the select
		p.do(chromedp.SetValue(chromedp.CSS(`#sort`), mode))
		evalJS[bool](p, `document.querySelector('#sort').dispatchEvent(new Event('change'))`)
	}
	pick("name")
	p.waitFor("sorted by name", `[...document.querySelectorAll('[data-device]')].map(c => c.dataset.device).join(' ') === 'z9 m5 a1'`, wait)
	pick("id")
	p.waitFor("sorted by id again", `[...document.querySelectorAll('[data-device]')].map(c => c.dataset.device).join(' ') === 'a1 m5 z9'`, wait)
}
