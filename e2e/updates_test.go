package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"switchyard/internal/testutil"
)

// Firmware updates in the browser: each card's firmware version and update
// state, and the Updates view for admins (upload a build, start rollouts,
// follow them live per wave and per board, pause, resume, abort). The view
// and the cards are found through their data attributes:
//
//	card       data-field="firmware", data-field="update" (data-update="<state>" on the card)
//	view       data-view="updates" (#updates), nav links data-nav="boards|updates"
//	forms      #fw-file #fw-version #fw-platform, data-action="upload";
//	           #ro-firmware, input[name=target] all|group|tag|ids, #ro-group #ro-tag #ro-ids,
//	           #ro-waves #ro-health #ro-max-failures #ro-parallel, data-action="start-rollout";
//	           #upload-status and #rollout-status (data-status="ok|error|busy")
//	builds     data-firmware="<sha256>", data-action="delete-firmware" (click twice)
//	rollouts   data-rollout="<id>" data-rollout-state="<state>"; data-wave="<n>" (from 1)
//	           data-wave-state; data-board="<id>" data-board-state="<state>";
//	           data-action="pause|resume|abort" (abort: click twice)

// The versions of the devicefw builds in these tests.
const (
	oldVersion = "1.0-e2e"
	newVersion = "2.0-e2e"
)

// updatesConfig is the control plane's config for these tests: an admin
// and a viewer with passwords (anonymous local clients, the boards and
// the test's own requests, act as operators), and a group.
func updatesConfig(t *testing.T) string {
	t.Helper()
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	return fmt.Sprintf(`auth:
  anonymous: local
  users:
    - {name: ada, password_hash: %q, role: admin}
    - {name: vera, password_hash: %q, role: viewer}
groups: {first: [good-1, good-2, good-3]}
`, hash("pw-ada"), hash("pw-vera"))
}

// login logs name in through the login form; the page is on the dashboard
// afterwards.
func (p *page) login(cp *controlPlane, name, password string) {
	p.t.Helper()
	p.open(cp.url("/login"))
	p.do(
		chromedp.SetValue(chromedp.CSS(`input[name="name"]`), name),
		chromedp.SetValue(chromedp.CSS(`input[name="password"]`), password),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitReady(chromedp.CSS(`#conn`)), // the dashboard's, after the redirect
	)
	p.waitFor(name+" logged in and connected", `__e2e.conn().state === "connected"`, wait)
}

// jsCardField is a JavaScript condition: board id's card shows field
// (firmware or update) matching the regular expression re.
func jsCardField(id, field, re string) string {
	return fmt.Sprintf(`(c => c && %s.test(c.%s))(%s)`, jsRegexp(re), field, jsCard(id))
}

// jsRegexp is re as a JavaScript regular expression literal.
func jsRegexp(re string) string {
	q, _ := json.Marshal(re)
	return fmt.Sprintf("new RegExp(%s)", q)
}

// jsShown is a JavaScript condition: the element sel exists and is not
// hidden (by itself or an ancestor).
func jsShown(sel string) string {
	q, _ := json.Marshal(sel)
	return fmt.Sprintf(`(e => !!e && e.getClientRects().length > 0)(document.querySelector(%s))`, q)
}

// TestUpdatesOnCardsAndViewForAdmins needs no update API: every card shows
// the board's firmware and, from the board's update reports, its update
// state (and nothing once there is nothing to say); the Updates view is
// offered to admins only, and fits a phone.
func TestUpdatesOnCardsAndViewForAdmins(t *testing.T) {
	needChromium(t)
	cp := startControlPlane(t, cpOptions{extra: updatesConfig(t)})
	boards := map[string]*board{}
	for _, id := range []string{"k1", "k2", "k3"} {
		boards[id] = startBoard(t, cp.mqttAddr, boardOptions{id: id, firmware: "devicefw " + oldVersion})
	}
	browser := newBrowser(t)
	p := newPage(t, browser, "operator", pageOptions{}) // anonymous local: an operator
	p.open(cp.url("/#updates"))
	for id := range boards {
		p.waitFor(id+" shows its firmware and no update", jsCardField(id, "firmware", `^devicefw 1\.0-e2e$`)+" && "+jsCardField(id, "update", `^$`), wait)
	}
	if !evalJS[bool](p, `document.getElementById("views").hidden && document.getElementById("updates-view").hidden && !document.getElementById("boards-view").hidden`) {
		t.Errorf("an operator's page offers the Updates view (or shows it at #updates)")
	}

	job := func(state, extra string) string {
		return fmt.Sprintf(`{"job":"r1/1","state":%q,"version":%q,"running":%q%s}`, state, newVersion, oldVersion, extra)
	}
	for _, step := range []struct {
		id, report, want string
	}{
		{"k1", job("downloading", `,"progress":40`), `^downloading 40%$`},
		{"k1", job("verifying", `,"progress":100`), `^verifying$`},
		{"k1", job("restarting", `,"progress":100`), `^restarting$`},
		{"k1", job("trial", `,"progress":100`), `^trial$`},
		{"k1", job("confirmed", `,"progress":100`), `^confirmed$`},
		{"k2", job("failed", `,"progress":0,"error":"checksum"`), `^failed: checksum$`},
		{"k3", job("rolled_back", `,"progress":100,"error":"crashed"`), `^rolled back: crashed$`},
	} {
		boards[step.id].report(t, step.report)
		p.waitFor(step.id+" shows "+step.want, jsCardField(step.id, "update", step.want), wait)
	}
	boards["k1"].setInfo(t, map[string]any{"firmware": "devicefw " + newVersion})
	p.waitFor("k1 shows its new firmware", jsCardField("k1", "firmware", `^devicefw 2\.0-e2e$`), wait)

	t.Run("a page opened later keeps outcomes and leaves out old confirmations", func(t *testing.T) {
		later := newPage(t, browser, "later", pageOptions{})
		later.open(cp.url("/"))
		later.waitFor("k2 and k3 show their failed updates",
			jsCardField("k2", "update", `^failed: checksum$`)+" && "+jsCardField("k3", "update", `^rolled back: crashed$`), wait)
		later.waitFor("k1 shows its new firmware and nothing of its confirmed update",
			jsCardField("k1", "firmware", `2\.0-e2e`)+" && "+jsCardField("k1", "update", `^$`), wait)
	})

	t.Run("a viewer is not offered the Updates view", func(t *testing.T) {
		v := newPage(t, browser, "viewer", pageOptions{})
		v.login(cp, "vera", "pw-vera")
		v.open(cp.url("/#updates"))
		v.waitFor("the boards", `__e2e.cards().length === 3`, wait)
		if !evalJS[bool](v, `document.getElementById("views").hidden && document.getElementById("updates-view").hidden`) {
			t.Error("a viewer's page offers the Updates view")
		}
	})

	t.Run("an admin opens the Updates view, also on a phone", func(t *testing.T) {
		a := newPage(t, browser, "admin", pageOptions{})
		a.login(cp, "ada", "pw-ada")
		a.waitFor("the Updates link", jsShown(`[data-nav="updates"]`), wait)
		a.do(chromedp.Click(chromedp.CSS(`[data-nav="updates"]`)))
		a.waitFor("the Updates view instead of the boards",
			jsShown(`[data-view="updates"]`)+` && !`+jsShown(`[data-view="boards"]`)+` && !`+jsShown(`#filter`)+` && location.hash === "#updates"`, wait)
		a.do(chromedp.Click(chromedp.CSS(`[data-nav="boards"]`)))
		a.waitFor("the boards again", jsShown(`[data-view="boards"]`)+` && !`+jsShown(`[data-view="updates"]`), wait)

		phone := newPage(t, browser, "admin phone", pageOptions{width: 390, height: 844, mobile: true})
		phone.login(cp, "ada", "pw-ada")
		phone.open(cp.url("/#updates"))
		phone.waitFor("the Updates view", jsShown(`[data-view="updates"]`), wait)
		checkPhoneLayout(t, phone)
	})
}

// updatesLayoutJS measures the Updates view on a phone: horizontal
// scrolling, boxes sticking out, controls too small to tap.
const updatesLayoutJS = `(() => {
  const width = document.documentElement.clientWidth;
  const out = [], small = [];
  for (const e of document.querySelectorAll("header.top, header.top *, [data-view=updates], [data-view=updates] *")) {
    const r = e.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.left < -0.5 || r.right > width + 0.5) out.push(e.tagName.toLowerCase() + "." + e.className + (e.id ? "#" + e.id : "") + " [" + Math.round(r.left) + ", " + Math.round(r.right) + "]");
  }
  for (const e of document.querySelectorAll("[data-view=updates] button, [data-view=updates] input, [data-view=updates] select, [data-nav]")) {
    const r = e.getBoundingClientRect();
    if (r.width > 0 && (r.width < 24 || r.height < 24)) small.push((e.id || e.getAttribute("data-action") || e.textContent.trim()) + " " + Math.round(r.width) + "x" + Math.round(r.height));
  }
  return { scrollWidth: document.documentElement.scrollWidth, clientWidth: width, outside: out, small };
})()`

// checkPhoneLayout fails t for what updatesLayoutJS finds.
func checkPhoneLayout(t *testing.T, p *page) {
	t.Helper()
	l := evalJS[layout](p.in(t), updatesLayoutJS)
	if l.ScrollWidth > l.ClientWidth {
		t.Errorf("Updates view on a phone: horizontal scroll, scrollWidth %d > clientWidth %d", l.ScrollWidth, l.ClientWidth)
	}
	for _, o := range l.Outside {
		t.Errorf("Updates view on a phone: sticks out of the %d px viewport: %s", l.ClientWidth, o)
	}
	for _, s := range l.Small {
		t.Errorf("Updates view on a phone: smaller than 24x24 px to tap: %s", s)
	}
}

// updateKey returns the control plane's update public key. While the
// update API is not part of the control plane (GET /api/update-key answers
// 404), the test is skipped.
func updateKey(t *testing.T, cp *controlPlane) string {
	t.Helper()
	resp, err := http.Get(cp.url("/api/update-key"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var k struct {
		PublicKey string `json:"public_key"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &k) != nil || k.PublicKey == "" {
		t.Fatalf("GET /api/update-key = %d %s, want 200 {\"public_key\"}", resp.StatusCode, body)
	}
	return k.PublicKey
}

// simOptions configures a devicefw process of simulated boards.
type simOptions struct {
	id   string // the prefix of the ids: <id>-1 … <id>-N
	n    int
	key  string // --update-key
	fail string // --sim-update-fail; "" for none
}

// startSims runs devicefw built at oldVersion with --sim, against the
// control plane's broker. It is stopped at the end of the test.
func startSims(t *testing.T, cp *controlPlane, opt simOptions) {
	t.Helper()
	bin := testutil.BuildBinary(t, "switchyard/cmd/devicefw", "-ldflags=-X main.version="+oldVersion)
	args := []string{
		"--broker", "tcp://" + cp.mqttAddr, "--sim", fmt.Sprint(opt.n), "--id", opt.id,
		"--interval", "200ms", "--update-key", opt.key, "--update-trial", "1s", "--update-deadline", "20s",
	}
	if opt.fail != "" {
		args = append(args, "--sim-update-fail", opt.fail)
	}
	if _, _, err := testutil.Start(t, exec.Command(bin, args...), regexp.MustCompile(`devicefw starting`), wait); err != nil {
		t.Fatalf("start devicefw --sim %d --id %s: %v", opt.n, opt.id, err)
	}
}

// updateFleet is a control plane with simulated boards that can update:
// good-1 … good-<good>, and bad-1 … bad-<bad>, whose new builds crash at
// start.
func updateFleet(t *testing.T, good, bad int) *controlPlane {
	t.Helper()
	needChromium(t)
	cp := startControlPlane(t, cpOptions{extra: updatesConfig(t)})
	key := updateKey(t, cp)
	startSims(t, cp, simOptions{id: "good", n: good, key: key})
	startSims(t, cp, simOptions{id: "bad", n: bad, key: key, fail: "start"})
	return cp
}

// openUpdates opens the Updates view as the admin once every board of
// the fleet shows its old firmware.
func openUpdates(t *testing.T, browser context.Context, cp *controlPlane, name string, opt pageOptions, ids []string) *page {
	t.Helper()
	p := newPage(t, browser, name, opt)
	p.login(cp, "ada", "pw-ada")
	for _, id := range ids {
		p.waitFor(id+" online on "+oldVersion, jsOnline(id, true)+" && "+jsCardField(id, "firmware", regexp.QuoteMeta(oldVersion)), wait)
	}
	p.open(cp.url("/#updates"))
	p.waitFor("the Updates view", jsShown(`[data-view="updates"]`), wait)
	return p
}

// upload uploads a build of random bytes as version for platform sim
// through the view and returns its SHA-256 and the file it is in.
func (p *page) upload(version string) (sha, path string) {
	p.t.Helper()
	data := make([]byte, 256<<10)
	_, _ = rand.Read(data)
	sum := sha256.Sum256(data)
	sha = hex.EncodeToString(sum[:])
	path = filepath.Join(p.t.TempDir(), "devicefw-"+version+".bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.setUploadForm(path, version)
	p.waitFor("the build listed and offered for rollouts",
		fmt.Sprintf(`!!document.querySelector('[data-firmware=%q]') && document.getElementById("ro-firmware").value === %q`, sha, sha), wait)
	return sha, path
}

func (p *page) setUploadForm(path, version string) {
	p.t.Helper()
	p.do(
		chromedp.SetUploadFiles(chromedp.CSS(`#fw-file`), []string{path}),
		chromedp.SetValue(chromedp.CSS(`#fw-version`), version),
		chromedp.SetValue(chromedp.CSS(`#fw-platform`), "sim"),
		chromedp.Click(chromedp.CSS(`[data-action="upload"]`)),
	)
}

// rolloutForm is what the test fills in to start a rollout.
type rolloutForm struct {
	target, value                        string // all, group, tag or ids, and the group, tag or ids
	waves, health, maxFailures, parallel string
}

// startRollout fills in the rollout form, starts it, and returns the id of
// the rollout that appears.
func (p *page) startRollout(f rolloutForm) string {
	p.t.Helper()
	if f.target == "group" {
		p.waitFor("group "+f.value+" offered", fmt.Sprintf(`!!document.querySelector('#ro-group option[value=%q]')`, f.value), wait)
	}
	before := evalJS[[]string](p, `Array.from(document.querySelectorAll("[data-rollout]"), e => e.dataset.rollout)`)
	actions := []chromedp.Action[chromedp.Void]{
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`input[name="target"][value=%q]`, f.target))),
	}
	switch f.target {
	case "group":
		actions = append(actions, chromedp.SetValue(chromedp.CSS(`#ro-group`), f.value))
	case "tag":
		actions = append(actions, chromedp.SetValue(chromedp.CSS(`#ro-tag`), f.value))
	case "ids":
		actions = append(actions, chromedp.SetValue(chromedp.CSS(`#ro-ids`), f.value))
	}
	for sel, v := range map[string]string{`#ro-waves`: f.waves, `#ro-health`: f.health, `#ro-max-failures`: f.maxFailures, `#ro-parallel`: f.parallel} {
		if v != "" { // (chromedp cannot set an empty value: cleared below)
			actions = append(actions, chromedp.SetValue(chromedp.CSS(sel), v))
		}
	}
	actions = append(actions, chromedp.Click(chromedp.CSS(`[data-action="start-rollout"]`)))
	evalJS[bool](p, `["ro-waves", "ro-health", "ro-max-failures", "ro-parallel"].every(id => (document.getElementById(id).value = "") === "")`)
	p.do(actions...)
	known, _ := json.Marshal(before)
	p.waitFor("a new rollout listed", fmt.Sprintf(`Array.from(document.querySelectorAll("[data-rollout]")).some(e => !%s.includes(e.dataset.rollout))`, known), wait)
	id := evalJS[string](p, fmt.Sprintf(`Array.from(document.querySelectorAll("[data-rollout]"), e => e.dataset.rollout).find(id => !%s.includes(id))`, known))
	if s := evalJS[string](p, `document.getElementById("rollout-status").dataset.status || ""`); s == "error" {
		p.t.Fatalf("rollout form: %s", evalJS[string](p, `document.getElementById("rollout-status").textContent`))
	}
	return id
}

// rolloutView is a rollout as the view shows it: its state and each
// wave's boards' states.
type rolloutView struct {
	State string              `json:"state"`
	Waves []map[string]string `json:"waves"` // board id → state, per wave in order
}

func (p *page) rollout(id string) rolloutView {
	p.t.Helper()
	q, _ := json.Marshal(id)
	return evalJS[rolloutView](p, fmt.Sprintf(`(r => r ? {
  state: r.dataset.rolloutState,
  waves: Array.from(r.querySelectorAll("[data-wave]"), w => Object.fromEntries(
    Array.from(w.querySelectorAll("[data-board]"), b => [b.dataset.board, b.dataset.boardState]))),
} : null)(document.querySelector('[data-rollout=' + JSON.stringify(%s) + ']'))`, q))
}

// jsRolloutState is a JavaScript condition: rollout id is shown in state.
func jsRolloutState(id, state string) string {
	return fmt.Sprintf(`!!document.querySelector('[data-rollout=%q][data-rollout-state=%q]')`, id, state)
}

// jsRolloutButton is a JavaScript condition: rollout id's action button
// is shown (or not) and enabled.
func jsRolloutButton(id, action string, shown bool) string {
	sel := fmt.Sprintf(`[data-rollout=%q] [data-action=%q]`, id, action)
	if !shown {
		return "!" + jsShown(sel)
	}
	q, _ := json.Marshal(sel)
	return jsShown(sel) + fmt.Sprintf(` && !document.querySelector(%s).disabled`, q)
}

// TestUpdatesView drives the Updates view against a real control plane
// and real simulated boards: a build is uploaded (a second upload of the
// same bytes shows the API's refusal), a rollout on a group goes through
// its waves to done and the cards show the new version, a rollout of a
// build that crashes halts at its canary with nothing sent to the others,
// and a rollout is paused, resumed and aborted from its buttons.
func TestUpdatesView(t *testing.T) {
	cp := updateFleet(t, 5, 3)
	ids := []string{"good-1", "good-2", "good-3", "good-4", "good-5", "bad-1", "bad-2", "bad-3"}
	browser := newBrowser(t)
	p := openUpdates(t, browser, cp, "admin", pageOptions{width: 1280, height: 1600}, ids)

	var build string // the file of the uploaded build
	if !t.Run("upload a build", func(t *testing.T) {
		var sha string
		sha, build = p.in(t).upload(newVersion)
		var list []struct {
			SHA256   string `json:"sha256"`
			Version  string `json:"version"`
			Platform string `json:"platform"`
		}
		resp, err := http.Get(cp.url("/api/firmware"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || len(list) != 1 || list[0].SHA256 != sha || list[0].Version != newVersion || list[0].Platform != "sim" {
			t.Fatalf("GET /api/firmware = %+v (%v), want the one build %s %s sim", list, err, sha, newVersion)
		}
	}) {
		return
	}

	t.Run("a second upload of the same bytes shows the API's refusal", func(t *testing.T) {
		p := p.in(t)
		p.setUploadForm(build, newVersion)
		p.waitFor("the refusal shown", `document.getElementById("upload-status").dataset.status === "error" && /\S/.test(document.getElementById("upload-status").textContent)`, wait)
		if n := evalJS[int](p, `document.querySelectorAll("[data-firmware]").length`); n != 1 {
			t.Errorf("%d builds listed after the refused upload, want 1", n)
		}
	})

	if !t.Run("a rollout on a group reaches done", func(t *testing.T) {
		p := p.in(t)
		id := p.startRollout(rolloutForm{target: "group", value: "first", waves: "1, 50%, 100%", health: "2s"})
		p.waitFor("rollout "+id+" done", jsRolloutState(id, "done"), 90*time.Second)
		r := p.rollout(id)
		if len(r.Waves) != 3 {
			t.Errorf("rollout %s shows %d waves, want 3: %+v", id, len(r.Waves), r)
		}
		n := 0
		for _, w := range r.Waves {
			for board, state := range w {
				n++
				if state != "updated" || !strings.HasPrefix(board, "good-") {
					t.Errorf("rollout %s: board %s %s, want updated and in the group", id, board, state)
				}
			}
		}
		if n != 3 || len(r.Waves) > 0 && len(r.Waves[0]) != 1 {
			t.Errorf("rollout %s: %d boards (first wave %v), want 3 with a canary of one", id, n, r.Waves)
		}
		for _, b := range []string{"good-1", "good-2", "good-3"} {
			p.waitFor(b+" shows the new firmware", jsCardField(b, "firmware", regexp.QuoteMeta(newVersion)), wait)
		}
		for _, b := range []string{"good-4", "good-5"} {
			if !evalJS[bool](p, jsCardField(b, "firmware", regexp.QuoteMeta(oldVersion))) {
				t.Errorf("%s, outside the group, changed its firmware: %s", b, p.cardByID()[b])
			}
		}
		if !evalJS[bool](p, jsRolloutButton(id, "pause", false)+" && "+jsRolloutButton(id, "abort", false)) {
			t.Errorf("a done rollout still offers pause or abort")
		}
	}) {
		return
	}

	t.Run("a build that crashes halts at the canary", func(t *testing.T) {
		p := p.in(t)
		id := p.startRollout(rolloutForm{target: "ids", value: "bad-1, bad-2, bad-3", waves: "1, 100%", health: "2s", maxFailures: "0"})
		p.waitFor("rollout "+id+" halted", jsRolloutState(id, "halted"), 90*time.Second)
		r := p.rollout(id)
		var failed []string
		for i, w := range r.Waves {
			for b, state := range w {
				switch {
				case state == "failed":
					failed = append(failed, b)
					if i != 0 {
						t.Errorf("rollout %s: %s failed in wave %d, want only the canary (wave 1)", id, b, i+1)
					}
				case state != "pending":
					t.Errorf("rollout %s: %s is %s after the halt, want pending (never sent anything)", id, b, state)
				}
			}
		}
		if len(failed) != 1 {
			t.Fatalf("rollout %s: failed boards %v, want the canary alone: %+v", id, failed, r)
		}
		p.waitFor(failed[0]+"'s card says it rolled back", jsCardField(failed[0], "update", `^rolled back`), wait)
		for _, b := range []string{"bad-1", "bad-2", "bad-3"} {
			if !evalJS[bool](p, jsCardField(b, "firmware", regexp.QuoteMeta(oldVersion))) {
				t.Errorf("%s does not run %s after the halt: %s", b, oldVersion, p.cardByID()[b])
			}
			if b != failed[0] && !evalJS[bool](p, jsCardField(b, "update", `^$`)) {
				t.Errorf("%s, never sent anything, shows an update: %s", b, p.cardByID()[b])
			}
		}
		if reason := evalJS[string](p, fmt.Sprintf(`document.querySelector('[data-rollout=%q] [data-field="reason"]').textContent`, id)); strings.TrimSpace(reason) == "" {
			t.Errorf("halted rollout %s shows no reason", id)
		}
	})

	t.Run("pause, resume and abort", func(t *testing.T) {
		p := p.in(t)
		// A long health window keeps the rollout running at its canary.
		id := p.startRollout(rolloutForm{target: "ids", value: "good-4 good-5", waves: "1, 100%", health: "10m"})
		p.waitFor("running, pause and abort offered", jsRolloutState(id, "running")+" && "+jsRolloutButton(id, "pause", true)+" && "+jsRolloutButton(id, "abort", true)+" && "+jsRolloutButton(id, "resume", false), wait)
		p.do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`[data-rollout=%q] [data-action="pause"]`, id))))
		p.waitFor("paused, resume offered", jsRolloutState(id, "paused")+" && "+jsRolloutButton(id, "resume", true)+" && "+jsRolloutButton(id, "pause", false), wait)
		p.do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`[data-rollout=%q] [data-action="resume"]`, id))))
		p.waitFor("running again", jsRolloutState(id, "running")+" && "+jsRolloutButton(id, "pause", true), wait)
		abort := chromedp.CSS(fmt.Sprintf(`[data-rollout=%q] [data-action="abort"]`, id))
		p.do(chromedp.Click(abort))
		if !evalJS[bool](p, jsRolloutState(id, "running")) {
			t.Fatal("one click on abort changed the rollout; it should ask again")
		}
		p.do(chromedp.Click(abort))
		p.waitFor("aborted, no buttons left", jsRolloutState(id, "aborted")+" && "+jsRolloutButton(id, "pause", false)+" && "+jsRolloutButton(id, "resume", false)+" && "+jsRolloutButton(id, "abort", false), wait)
	})

	t.Run("a page opened later shows every rollout", func(t *testing.T) {
		later := openUpdates(t, browser, cp, "later", pageOptions{}, nil)
		later.waitFor("three rollouts: done, halted, aborted", `["done", "halted", "aborted"].every(s => document.querySelector('[data-rollout-state="' + s + '"]'))`, wait)
		checkAPIRollouts(t, cp, later)
	})
}

// checkAPIRollouts compares the view with GET /api/rollouts: the same
// rollouts in the same states.
func checkAPIRollouts(t *testing.T, cp *controlPlane, p *page) {
	t.Helper()
	resp, err := http.Get(cp.url("/api/rollouts"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatalf("GET /api/rollouts: %v", err)
	}
	shown := evalJS[map[string]string](p, `Object.fromEntries(Array.from(document.querySelectorAll("[data-rollout]"), e => [e.dataset.rollout, e.dataset.rolloutState]))`)
	if len(shown) != len(list) {
		t.Errorf("the view shows %d rollouts %v, the API lists %d", len(shown), shown, len(list))
	}
	for _, r := range list {
		if shown[r.ID] != r.State {
			t.Errorf("rollout %s: the view shows %q, the API says %q", r.ID, shown[r.ID], r.State)
		}
	}
}

// TestScreenshotsUpdates takes docs/updates.png (1200 px wide, light): the
// Updates view with a done, a halted and a running rollout. Like
// TestScreenshots (its name makes make screenshots' -run TestScreenshots
// take it too), it writes into docs/ only with E2E_SCREENSHOTS=1, elsewhere
// into a temporary directory.
func TestScreenshotsUpdates(t *testing.T) {
	cp := updateFleet(t, 6, 3)
	dir := screenshotDir(t)
	ids := []string{"good-1", "good-2", "good-3", "good-4", "good-5", "good-6", "bad-1", "bad-2", "bad-3"}
	const width, height = 1200, 1500
	p := openUpdates(t, newBrowser(t), cp, "updates.png", pageOptions{width: width, height: height, scheme: "light"}, ids)
	p.upload(newVersion)
	done := p.startRollout(rolloutForm{target: "group", value: "first", waves: "1, 100%", health: "1s"})
	p.waitFor("the first rollout done", jsRolloutState(done, "done"), 90*time.Second)
	halted := p.startRollout(rolloutForm{target: "ids", value: "bad-1, bad-2, bad-3", waves: "1, 100%", health: "1s", maxFailures: "0"})
	p.waitFor("the second rollout halted", jsRolloutState(halted, "halted"), 90*time.Second)
	running := p.startRollout(rolloutForm{target: "ids", value: "good-4, good-5, good-6", waves: "1, 50%, 100%", health: "10m"})
	p.waitFor("the third rollout's canary in its health window",
		fmt.Sprintf(`!!document.querySelector('[data-rollout=%q] [data-board-state="checking"]')`, running), 90*time.Second)
	evalJS[bool](p, `(window.scrollTo(0, 0), true)`)
	p.screenshot(filepath.Join(dir, "updates.png"), width)
}
