package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"switchyard/internal/testutil"
)

// Onboarding in the browser: the Add board dialog, new boards and their
// adoption, the Users page, against the control plane's accounts API
// (CONTRACT "Onboarding"). Found through:
//
//	add board  #add-board (admins); #board-dialog (data-mode="add|adopt"): #bd-id #bd-name #bd-tags,
//	           data-action="create-board|forget-board|close-dialog", #bd-status (data-status="error|busy");
//	           the answer in #bd-result: [data-cred="username|password|command|env"], buttons
//	           [data-copy="…"] and their .copy-note (data-outcome="copied|selected")
//	cards      data-waiting (known, never connected) with [data-field="waiting"];
//	           data-new="true" with [data-field="new"], data-action="adopt" (admins),
//	           data-action="forget" (cards, admins; click twice)
//	users      #users-view (#users), nav [data-nav="users"]; #nu-name #nu-role #nu-password,
//	           data-action="create-user", #nu-status; #user-list li[data-user][data-source][data-role][data-disabled]
//	           with select[data-action="role"], data-action="reset-password|disable|enable|new-token|
//	           delete-user|revoke-token|save-password|token-done" (delete and revoke: click twice),
//	           [data-field="new-password"], [data-cred="token"], li[data-token], [data-field="user-status"]

// onboardConfig is the control plane's auth for these tests, with
// anonymous access as given: ada, an admin with a password and an API
// token (the test's own requests use it), vera, a viewer, and k1, a board
// from config.yaml. It returns the config and ada's token.
func onboardConfig(t *testing.T, anonymous string) (extra, token string) {
	t.Helper()
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	token = hex.EncodeToString(secret)
	digest := sha256.Sum256([]byte(token))
	return fmt.Sprintf(`auth:
  anonymous: %q
  users:
    - {name: ada, password_hash: %q, role: admin, tokens: [%q]}
    - {name: vera, password_hash: %q, role: viewer}
    - {name: k1, password_hash: %q, role: device}
`, anonymous, hash("pw-ada"), hex.EncodeToString(digest[:]), hash("pw-vera"), hash("pw-k1")), token
}

// apiDo sends method path to cp with body (JSON; "" for none) and the
// bearer token ("" for none), and returns the answer's status and body.
func apiDo(t *testing.T, cp *controlPlane, method, path, body, token string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, cp.url(path), rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// grantClipboard lets p's origin (cp's) read and write the clipboard
// without asking, as a person who allowed it would.
func (p *page) grantClipboard(cp *controlPlane) {
	p.t.Helper()
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.Call(p.ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission:       &browser.PermissionDescriptor{Name: name},
			Setting:          browser.PermissionSettingGranted,
			Origin:           cp.url(""),
			BrowserContextID: chromedp.FromContext(p.ctx).BrowserContextID,
		}); err != nil {
			p.t.Fatalf("page %s: grant %s: %v", p.name, name, err)
		}
	}
}

// clipboard is what the clipboard holds, read as the page may read it
// (even where the page has hidden navigator.clipboard from itself).
func (p *page) clipboard() string {
	p.t.Helper()
	return evalJS[string](p, `Object.getOwnPropertyDescriptor(Navigator.prototype, "clipboard").get.call(navigator).readText()`)
}

// boardAnswer is POST /api/boards's answer as the page received it.
type boardAnswer struct {
	Status int `json:"status"`
	Body   struct {
		ID        string `json:"id"`
		Username  string `json:"username"`
		Password  string `json:"password"`
		Broker    string `json:"broker"`
		UpdateKey string `json:"update_key"`
		Command   string `json:"command"`
		Env       string `json:"env"`
		Error     string `json:"error"`
	} `json:"body"`
}

// recordBoardAnswers makes the page keep every answer to its POST
// api/boards in window.__boards, for boardAnswers (until it loads
// another document).
func (p *page) recordBoardAnswers() {
	p.t.Helper()
	evalJS[bool](p, `(() => {
  if (window.__boards) return true;
  window.__boards = [];
  const fetch = window.fetch;
  window.fetch = function (input, init) {
    const answer = fetch.apply(this, arguments);
    if (String(input).endsWith("api/boards") && init && init.method === "POST") {
      answer.then((r) => r.clone().json().then((body) => window.__boards.push({ status: r.status, body }))).catch(() => {});
    }
    return answer;
  };
  return true;
})()`)
}

// boardAnswers returns the answers recordBoardAnswers kept, once there
// are n of them.
func (p *page) boardAnswers(n int) []boardAnswer {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("%d answers to POST api/boards", n), fmt.Sprintf(`window.__boards.length >= %d`, n), wait)
	return evalJS[[]boardAnswer](p, `window.__boards`)
}

// jsTextOf is a JavaScript expression: the text of the element sel (""
// when there is none).
func jsTextOf(sel string) string {
	q, _ := json.Marshal(sel)
	return fmt.Sprintf(`((e) => e ? e.textContent : "")(document.querySelector(%s))`, q)
}

// jsDialogError is a JavaScript condition: the dialog shows an error
// matching re.
func jsDialogError(re string) string {
	return `document.getElementById("bd-status").dataset.status === "error" && ` + jsRegexp(re) + `.test(` + jsTextOf("#bd-status") + `)`
}

// fill sets the value of the input sel (chromedp.SetValue cannot set an
// empty one).
func (p *page) fill(sel, value string) {
	p.t.Helper()
	q, _ := json.Marshal(sel)
	v, _ := json.Marshal(value)
	if !evalJS[bool](p, fmt.Sprintf(`(e => !!e && (e.value = %s, true))(document.querySelector(%s))`, v, q)) {
		p.t.Fatalf("page %s: no %s to fill", p.name, sel)
	}
}

// addBoard fills the open dialog and submits it.
func (p *page) addBoard(id, name, tags string) {
	p.t.Helper()
	p.fill(`#bd-id`, id)
	p.fill(`#bd-name`, name)
	p.fill(`#bd-tags`, tags)
	p.do(chromedp.Click(chromedp.CSS(`#bd-form [data-action="create-board"]`)))
}

// checkCredentials checks that the dialog shows answer a: its username,
// password, command and environment file.
func checkCredentials(t *testing.T, p *page, a boardAnswer) {
	t.Helper()
	p.waitFor("the credentials", jsShown(`#bd-result [data-cred="password"]`), wait)
	for _, c := range []struct{ key, want string }{
		{"username", a.Body.Username}, {"password", a.Body.Password}, {"command", a.Body.Command}, {"env", a.Body.Env},
	} {
		if got := evalJS[string](p, jsTextOf(`#bd-result [data-cred="`+c.key+`"]`)); got != c.want || got == "" {
			t.Errorf("the dialog shows %s %q, want the API's %q", c.key, got, c.want)
		}
	}
	if !evalJS[bool](p, `/shown only now/i.test(document.getElementById("bd-result").textContent)`) {
		t.Errorf("the dialog does not say the password is shown only now: %s", evalJS[string](p, jsTextOf("#bd-result")))
	}
}

// devicefwArgs splits a command line of POST /api/boards, which quotes
// nothing (ids, base64 and URLs need no quoting), into devicefw's
// arguments.
func devicefwArgs(t *testing.T, command string) []string {
	t.Helper()
	f := strings.Fields(command)
	if len(f) < 2 || f[0] != "devicefw" || strings.ContainsAny(command, `'"\$`+"`") {
		t.Fatalf("command %q: want devicefw and unquoted flags", command)
	}
	return f[1:]
}

// TestAddBoardDialog: an admin adds a board in the dialog, with
// auth.anonymous off: an id taken and a bad tag are refused in the
// dialog; the answer's username, password, command and environment file
// are shown once with copy buttons (the clipboard gets exactly the API's
// command; without the async clipboard, as over plain http on a LAN, the
// text is selected instead); the board shows at once, waiting for its
// first connection; reopening the dialog shows no password; a real
// devicefw started with the copied command comes online. A viewer is not
// offered the dialog.
func TestAddBoardDialog(t *testing.T) {
	needChromium(t)
	extra, token := onboardConfig(t, "off")
	cp := startControlPlane(t, cpOptions{extra: extra})
	fw := testutil.BuildBinary(t, "switchyard/cmd/devicefw")
	browser := newBrowser(t)
	p := newPage(t, browser, "ada", pageOptions{width: 1200, height: 900})
	p.login(cp, "ada", "pw-ada")
	p.grantClipboard(cp)
	p.recordBoardAnswers()
	p.waitFor("the Add board button", jsShown(`#add-board`), wait)
	p.do(chromedp.Click(chromedp.CSS(`#add-board`)))
	p.waitFor("the dialog", jsShown(`#board-dialog #bd-form`)+` && document.getElementById("board-dialog").dataset.mode === "add"`, wait)

	if !t.Run("refusals in the dialog", func(t *testing.T) {
		p := p.in(t)
		p.addBoard("vera", "", "")
		p.waitFor("409: the id is taken", jsDialogError(`taken`), wait)
		p.addBoard("porch", "", "Bad!tag")
		p.waitFor("400: a bad tag", jsDialogError(`tag`), wait)
		a := p.boardAnswers(2)
		if a[0].Status != http.StatusConflict || a[1].Status != http.StatusBadRequest {
			t.Errorf("POST /api/boards answered %d and %d, want 409 and 400", a[0].Status, a[1].Status)
		}
		if !evalJS[bool](p, jsShown(`#bd-form`)+` && !`+jsShown(`#bd-result`)) {
			t.Error("a refusal left the form")
		}
	}) {
		return
	}

	var answer boardAnswer
	var copied string
	if !t.Run("credentials shown once, copied", func(t *testing.T) {
		p := p.in(t)
		p.addBoard("porch", "Porch lamp", "outside")
		answer = p.boardAnswers(3)[2]
		if answer.Status != http.StatusCreated || answer.Body.ID != "porch" || answer.Body.Username == "" || len(answer.Body.Password) < 32 {
			t.Fatalf("POST /api/boards = %d %+v, want 201 with porch's credentials", answer.Status, answer.Body)
		}
		checkCredentials(t, p, answer)
		p.waitFor("porch on the dashboard at once, waiting for its first connection",
			`(c => c && c.hasAttribute("data-waiting") && /\boffline\b/.test(c.querySelector('[data-field="online"]').textContent) && `+
				`/waiting for first connection/i.test(c.querySelector('[data-field="waiting"]').textContent) && c.querySelector('[data-field="name"]').textContent === "Porch lamp")`+
				`(document.querySelector('article.card[data-device="porch"]'))`, wait)

		p.do(chromedp.Click(chromedp.CSS(`#bd-result [data-copy="command"]`)))
		p.waitFor("the command copied", `Array.from(document.querySelectorAll("#bd-result .copy-note")).some(n => n.dataset.outcome === "copied" && /Command copied/.test(n.textContent))`, wait)
		copied = p.clipboard()
		if copied != answer.Body.Command {
			t.Errorf("the clipboard holds %q, want the API's command %q", copied, answer.Body.Command)
		}

		// Over plain http on a LAN there is no navigator.clipboard: the
		// text is selected (and copied the older way where that works).
		evalJS[bool](p, `(Object.defineProperty(navigator, "clipboard", { configurable: true, value: undefined }), true)`)
		p.do(chromedp.Click(chromedp.CSS(`#bd-result [data-copy="env"]`)))
		p.waitFor("the file selected", `(n => n && !!n.dataset.outcome)(document.querySelector('#bd-result [data-copy="env"] + .copy-note'))`, wait)
		// A selection's text ends without the file's final newline.
		if got, want := evalJS[string](p, `String(window.getSelection())`), strings.TrimSuffix(answer.Body.Env, "\n"); got != want {
			t.Errorf("selected %q, want the API's environment file %q", got, want)
		}
		if evalJS[string](p, `document.querySelector('#bd-result [data-copy="env"] + .copy-note').dataset.outcome`) == "copied" {
			if got := p.clipboard(); got != answer.Body.Env {
				t.Errorf("the note says copied, the clipboard holds %q, want %q", got, answer.Body.Env)
			}
		}

		p.do(chromedp.Click(chromedp.CSS(`#bd-result [data-action="close-dialog"]`)))
		p.waitFor("the dialog closed", `!document.getElementById("board-dialog").open`, wait)
		p.do(chromedp.Click(chromedp.CSS(`#add-board`)))
		p.waitFor("the dialog again, its form empty", jsShown(`#bd-form`)+` && !`+jsShown(`#bd-result`)+` && document.getElementById("bd-id").value === ""`, wait)
		pw, _ := json.Marshal(answer.Body.Password)
		if evalJS[bool](p, fmt.Sprintf(`document.documentElement.outerHTML.includes(%[1]s) || Array.from(document.querySelectorAll("input")).some(i => i.value.includes(%[1]s))`, pw)) {
			t.Error("the page still holds the password after the dialog closed")
		}
		p.do(chromedp.Click(chromedp.CSS(`#bd-form [data-action="close-dialog"]`)))
	}) {
		return
	}

	t.Run("the copied command connects the board", func(t *testing.T) {
		p := p.in(t)
		cmd := exec.Command(fw, devicefwArgs(t, copied)...)
		cmd.Env = append(os.Environ(), "DEVICEFW_STATE_DIR="+t.TempDir()) // not /var/lib/devicefw
		if _, _, err := testutil.Start(t, cmd, regexp.MustCompile(`devicefw starting`), wait); err != nil {
			t.Fatalf("start %s: %v", copied, err)
		}
		p.waitFor("porch online", jsOnline("porch", true)+` && !document.querySelector('article.card[data-device="porch"]').hasAttribute("data-waiting")`, wait)
		code, body := apiDo(t, cp, "GET", "/api/devices/porch", "", token)
		var d struct {
			Online bool    `json:"online"`
			Seen   *string `json:"last_seen"`
			New    bool    `json:"new"`
		}
		if code != http.StatusOK || json.Unmarshal([]byte(body), &d) != nil || !d.Online || d.Seen == nil || d.New {
			t.Errorf("GET /api/devices/porch = %d %s, want online, seen, not new", code, body)
		}
	})

	t.Run("no Add board for a viewer", func(t *testing.T) {
		v := newPage(t, browser, "vera", pageOptions{})
		v.login(cp, "vera", "pw-vera")
		v.waitFor("the boards", `!!`+jsCard("porch"), wait)
		if evalJS[bool](v, jsShown(`#add-board`)+` || `+jsShown(`[data-nav="users"]`)) {
			t.Error("a viewer is offered Add board or the Users page")
		}
	})
}

// TestNewBoardAdopt: a board that connected anonymously (from this
// machine) is marked new; an admin adopts it from its row (the dialog,
// in adopt mode, shows its credentials) and it is new no more; another
// new board is forgotten from its card. A viewer sees the mark but not
// the actions.
func TestNewBoardAdopt(t *testing.T) {
	needChromium(t)
	extra, token := onboardConfig(t, "local")
	cp := startControlPlane(t, cpOptions{extra: extra})
	startBoard(t, cp.mqttAddr, boardOptions{id: "stray"})
	startBoard(t, cp.mqttAddr, boardOptions{id: "stray-2"})
	browser := newBrowser(t)
	p := newPage(t, browser, "ada", pageOptions{width: 1200, height: 900})
	p.login(cp, "ada", "pw-ada")
	p.recordBoardAnswers()
	newCard := func(id string, admin bool) string {
		return fmt.Sprintf(`(c => c && c.dataset.new === "true" && %s && %s)(document.querySelector('article.card[data-device=%q]'))`,
			`!!c.querySelector('[data-field="new"]').getClientRects().length`,
			map[bool]string{true: `!!c.querySelector('[data-action="adopt"]').getClientRects().length`, false: `!c.querySelector('[data-action="adopt"]').getClientRects().length`}[admin], id)
	}
	p.waitFor("both new, with Adopt", newCard("stray", true)+" && "+newCard("stray-2", true), wait)

	v := newPage(t, browser, "vera", pageOptions{})
	v.login(cp, "vera", "pw-vera")
	v.waitFor("both new, without Adopt or Forget", newCard("stray", false)+" && "+newCard("stray-2", false)+
		` && !document.querySelector('[data-action="forget"]:not([hidden])')`, wait)

	t.Run("adopt from a row", func(t *testing.T) {
		p := p.in(t)
		p.do(chromedp.Click(chromedp.CSS(`[data-layout="table"]`)))
		p.click(`#rows tr[data-device="stray"] button[data-action="adopt"]`)
		p.waitFor("the dialog adopting stray", `document.getElementById("board-dialog").dataset.mode === "adopt" && document.getElementById("bd-id").value === "stray" && document.getElementById("bd-id").readOnly`, wait)
		p.do(chromedp.Click(chromedp.CSS(`#bd-form [data-action="create-board"]`)))
		a := p.boardAnswers(1)[0]
		if a.Status != http.StatusCreated || a.Body.ID != "stray" {
			t.Fatalf("POST /api/boards = %d %+v, want 201 for stray", a.Status, a.Body)
		}
		checkCredentials(t, p, a)
		p.do(chromedp.Click(chromedp.CSS(`#bd-result [data-action="close-dialog"]`)))
		p.waitFor("stray new no more", `(r => r && !r.hasAttribute("data-new") && r.querySelector('[data-action="adopt"]').hidden)(document.querySelector('#rows tr[data-device="stray"]'))`+
			` && document.querySelector('#rows tr[data-device="stray-2"]').dataset.new === "true"`, wait)
		p.do(chromedp.Click(chromedp.CSS(`[data-layout="cards"]`)))
	})

	t.Run("forget from a card", func(t *testing.T) {
		p := p.in(t)
		forget := chromedp.Click(chromedp.CSS(`article.card[data-device="stray-2"] [data-action="forget"]`))
		p.do(forget)
		p.waitFor("asked again", `document.querySelector('article.card[data-device="stray-2"] [data-action="forget"]').dataset.confirm === "true"`, wait)
		p.do(forget)
		p.waitFor("stray-2 gone", `!`+jsCard("stray-2")+` && !!`+jsCard("stray"), wait)
		if code, body := apiDo(t, cp, "GET", "/api/devices/stray-2", "", token); code != http.StatusNotFound {
			t.Errorf("GET /api/devices/stray-2 = %d %s, want 404", code, body)
		}
	})
}

// jsUser is a JavaScript expression: user name's row on the Users page
// (null when there is none).
func jsUser(name string) string {
	return fmt.Sprintf(`document.querySelector('#user-list li[data-user=%q]')`, name)
}

// userClick clicks the button of user name's row with data-action action.
func (p *page) userClick(name, action string) {
	p.t.Helper()
	p.do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`#user-list li[data-user=%q] button[data-action=%q]`, name, action))))
}

// TestUsersPage: with auth.anonymous off, an admin's Users page lists the
// users of config.yaml read-only (no controls, a note why); it adds an
// operator (a short password and a name taken are refused on the page),
// who logs in in another browser and switches a board; changes its role;
// makes it a token, shown once, that works until it is revoked; disables
// it (its open page is sent to the login form), resets its password,
// enables it (the new password works) and deletes it.
func TestUsersPage(t *testing.T) {
	needChromium(t)
	extra, token := onboardConfig(t, "off")
	cp := startControlPlane(t, cpOptions{extra: extra})
	k1 := startBoard(t, cp.mqttAddr, boardOptions{id: "k1", username: "k1", password: "pw-k1"})
	browser := newBrowser(t)
	p := newPage(t, browser, "ada", pageOptions{width: 1200, height: 1200})
	p.login(cp, "ada", "pw-ada")
	p.waitFor("the Users link", jsShown(`[data-nav="users"]`), wait)
	p.do(chromedp.Click(chromedp.CSS(`[data-nav="users"]`)))
	p.waitFor("the Users page", jsShown(`#users-view`)+` && !`+jsShown(`#boards-view`)+` && location.hash === "#users" && !!`+jsUser("k1"), wait)

	t.Run("config users read-only", func(t *testing.T) {
		p := p.in(t)
		for _, name := range []string{"ada", "vera", "k1"} {
			row := jsUser(name)
			if !evalJS[bool](p, fmt.Sprintf(`(r => r.dataset.source === "config" && r.querySelectorAll("button, select, input").length === 0 && /config\.yaml/.test(r.querySelector(".user-note").textContent) && !r.querySelector(".user-note").hidden)(%s)`, row)) {
				t.Errorf("%s: not shown read-only with a note: %s", name, evalJS[string](p, row+".outerHTML"))
			}
		}
		if !evalJS[bool](p, `!!document.querySelector('#user-list li[data-user="ada"] li[data-token]')`) {
			t.Error("ada's config token is not listed")
		}
	})

	const olgaPW = "olga-password-1"
	if !t.Run("add an operator", func(t *testing.T) {
		p := p.in(t)
		p.do(
			chromedp.SetValue(chromedp.CSS(`#nu-name`), "olga"),
			chromedp.SetValue(chromedp.CSS(`#nu-password`), "short"),
			chromedp.Click(chromedp.CSS(`[data-action="create-user"]`)),
		)
		p.waitFor("a short password refused", `document.getElementById("nu-status").dataset.status === "error" && /10 characters/.test(`+jsTextOf("#nu-status")+`)`, wait)
		p.pick("#nu-role", "operator")
		p.do(
			chromedp.SetValue(chromedp.CSS(`#nu-password`), olgaPW),
			chromedp.Click(chromedp.CSS(`[data-action="create-user"]`)),
		)
		p.waitFor("olga listed, an operator from the database", `(r => r && r.dataset.source === "database" && r.dataset.role === "operator" && r.dataset.disabled === "false" && r.querySelector('select[data-action="role"]').value === "operator")(`+jsUser("olga")+`)`, wait)
		p.do(
			chromedp.SetValue(chromedp.CSS(`#nu-name`), "olga"),
			chromedp.SetValue(chromedp.CSS(`#nu-password`), olgaPW),
			chromedp.Click(chromedp.CSS(`[data-action="create-user"]`)),
		)
		p.waitFor("409: the name taken", `document.getElementById("nu-status").dataset.status === "error" && /taken/.test(`+jsTextOf("#nu-status")+`)`, wait)
	}) {
		return
	}

	olga := newPage(t, browser, "olga", pageOptions{})
	if !t.Run("the operator logs in and switches", func(t *testing.T) {
		olga := olga.in(t)
		olga.login(cp, "olga", olgaPW)
		olga.waitFor("k1 online, its toggle on", jsOnline("k1", true)+` && !`+jsCard("k1")+`.disabled`, wait)
		olga.do(chromedp.Click(toggleSel("k1")))
		if got := k1.waitCommand(t); got != "TOGGLE" {
			t.Errorf("led/set %q, want TOGGLE", got)
		}
		olga.waitFor("k1 ON", jsLED("k1", "ON"), wait)
	}) {
		return
	}

	t.Run("change the role", func(t *testing.T) {
		p := p.in(t)
		p.pick(`#user-list li[data-user="olga"] select[data-action="role"]`, "viewer")
		p.waitFor("olga a viewer", `(r => r.dataset.role === "viewer" && r.querySelector('[data-field="user-status"]').dataset.status === "ok")(`+jsUser("olga")+`)`, wait)
		p.pick(`#user-list li[data-user="olga"] select[data-action="role"]`, "operator")
		p.waitFor("olga an operator again", jsUser("olga")+`.dataset.role === "operator"`, wait)
	})

	t.Run("a token, shown once, revoked", func(t *testing.T) {
		p := p.in(t)
		p.userClick("olga", "new-token")
		p.waitFor("the token shown", jsShown(`#user-list li[data-user="olga"] [data-cred="token"]`)+` && !!document.querySelector('#user-list li[data-user="olga"] li[data-token]')`, wait)
		tok := evalJS[string](p, jsTextOf(`#user-list li[data-user="olga"] [data-cred="token"]`))
		id := evalJS[string](p, `document.querySelector('#user-list li[data-user="olga"] li[data-token]').dataset.token`)
		if code, body := apiDo(t, cp, "GET", "/api/devices/k1", "", tok); code != http.StatusOK {
			t.Errorf("GET /api/devices/k1 with olga's new token = %d %s, want 200", code, body)
		}
		p.userClick("olga", "token-done")
		p.waitFor("the token no longer shown", `!`+jsShown(`#user-list li[data-user="olga"] [data-cred="token"]`), wait)
		if evalJS[bool](p, fmt.Sprintf(`document.documentElement.outerHTML.includes(%q)`, tok)) {
			t.Error("the page still holds the token after Done")
		}
		p.userClick("olga", "revoke-token")
		p.userClick("olga", "revoke-token") // asked again
		p.waitFor("the token gone", fmt.Sprintf(`!document.querySelector('#user-list li[data-user="olga"] li[data-token=%q]')`, id), wait)
		if code, body := apiDo(t, cp, "GET", "/api/devices/k1", "", tok); code != http.StatusUnauthorized {
			t.Errorf("GET /api/devices/k1 with the revoked token = %d %s, want 401", code, body)
		}
	})

	t.Run("disable: the open page goes to the login form", func(t *testing.T) {
		p := p.in(t)
		p.userClick("olga", "disable")
		p.waitFor("olga disabled", jsUser("olga")+`.dataset.disabled === "true" && !!`+jsUser("olga")+`.querySelector('[data-action="enable"]')`, wait)
		olga := olga.in(t)
		olga.do(chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`))) // the login form, after the redirect
		if got := evalJS[string](olga, `location.pathname`); got != "/login" {
			t.Errorf("olga's page is at %s, want /login", got)
		}
	})

	t.Run("reset the password, enable, delete", func(t *testing.T) {
		p := p.in(t)
		const newPW = "olga-new-password"
		p.userClick("olga", "reset-password")
		p.do(
			chromedp.SetValue(chromedp.CSS(`#user-list li[data-user="olga"] [data-field="new-password"]`), newPW),
			chromedp.Click(chromedp.CSS(`#user-list li[data-user="olga"] [data-action="save-password"]`)),
		)
		p.waitFor("the password changed", `(r => r.querySelector('[data-field="user-status"]').dataset.status === "ok" && r.querySelector(".user-password").hidden)(`+jsUser("olga")+`)`, wait)
		p.userClick("olga", "enable")
		p.waitFor("olga enabled", jsUser("olga")+`.dataset.disabled === "false"`, wait)
		olga := olga.in(t)
		olga.login(cp, "olga", newPW)

		p.userClick("olga", "delete-user")
		p.waitFor("asked again", `document.querySelector('#user-list li[data-user="olga"] [data-action="delete-user"]').dataset.confirm === "true"`, wait)
		p.userClick("olga", "delete-user")
		p.waitFor("olga gone", `!`+jsUser("olga")+` && !!`+jsUser("ada"), wait)
		code, body := apiDo(t, cp, "GET", "/api/users", "", token)
		if code != http.StatusOK || strings.Contains(body, `"olga"`) {
			t.Errorf("GET /api/users = %d %s, want 200 without olga", code, body)
		}
	})
}
