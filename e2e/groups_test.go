package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestGroupsAndTrackedCommands: the group bar switches exactly the boards
// of a configured group, and a command a board never confirms shows as
// pending, then says so when the control plane reports its timeout.
func TestGroupsAndTrackedCommands(t *testing.T) {
	needChromium(t)
	cp := startControlPlane(t, cpOptions{extra: "groups: {kitchen: [k1, k2]}\ncommands: {timeout: 1s}\n"})
	for _, id := range []string{"k1", "k2", "hall"} {
		startBoard(t, cp.mqttAddr, boardOptions{id: id})
	}
	hall := startBoard(t, cp.mqttAddr, boardOptions{id: "hall2"})
	startBoard(t, cp.mqttAddr, boardOptions{id: "deaf", deaf: true})
	p := newPage(t, newBrowser(t), "A", pageOptions{})
	p.open(cp.url("/"))
	for _, id := range []string{"k1", "k2", "hall", "hall2", "deaf"} {
		p.waitFor(id+" online", jsOnline(id, true)+" && "+jsLED(id, "OFF"), wait)
	}
	p.waitFor("the kitchen group listed", `!!document.querySelector('#group option[value="kitchen"]')`, wait)

	p.do(chromedp.SetValue(chromedp.CSS(`#group`), "kitchen"), chromedp.Click(chromedp.CSS(`[data-group-action="on"]`)))
	p.waitFor("kitchen boards on", jsLED("k1", "ON")+" && "+jsLED("k2", "ON"), wait)
	if hall.ledOn() {
		t.Error("the kitchen group switched hall2")
	}
	p.do(chromedp.SetValue(chromedp.CSS(`#group`), "all"), chromedp.Click(chromedp.CSS(`[data-group-action="off"]`)))
	p.waitFor("every board off", jsLED("k1", "OFF")+" && "+jsLED("k2", "OFF"), wait)

	p.do(chromedp.Click(toggleSel("deaf")))
	p.waitFor("the unconfirmed toggle shown pending",
		`document.querySelector('[data-device="deaf"]').hasAttribute('data-pending')`, wait)
	p.waitFor("its timeout reported on the card",
		`/No answer/.test(document.querySelector('[data-device="deaf"] [data-field="command"]').textContent)`, wait)
	p.waitFor("no longer pending",
		`!document.querySelector('[data-device="deaf"]').hasAttribute('data-pending')`, wait)
}
