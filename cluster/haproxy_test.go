package cluster

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/bcrypt"

	"switchyard/internal/testutil"
)

// TestHaproxyFailover puts haproxy in front of two control planes that
// share one Mosquitto and one session key. A browser logs in through
// haproxy and watches the fleet over /ws; the control plane serving it
// stops; the browser reconnects through haproxy with the same cookie,
// lands on the other one, gets the snapshot of every board and then live
// events, its commands included.
func TestHaproxyFailover(t *testing.T) {
	const user, password = "alice", "correct horse battery"
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	m := testutil.StartMosquitto(t, false)
	var cps []*controlPlane
	var backends []string
	for i := range 2 {
		dir := t.TempDir()
		// The session key lives beside storage.path: the same file on both
		// makes a cookie from one valid on the other.
		if err := os.WriteFile(filepath.Join(dir, "session.key"), key, 0o600); err != nil {
			t.Fatal(err)
		}
		more := fmt.Sprintf("storage: {path: %q}\nauth:\n  anonymous: \"off\"\n  users:\n    - {name: %s, password_hash: %q, role: operator}\n",
			filepath.Join(dir, "retained.json"), user, hash)
		cp := startControlPlane(t, dir, externalConfig(m.URL, fmt.Sprintf("cp-%d", i+1), "127.0.0.1:0", more))
		cps = append(cps, cp)
		backends = append(backends, cp.HTTPAddr)
	}
	h := testutil.StartHaproxy(t, backends...)
	for i := range cps {
		h.WaitServer(t, i, true, wait) // haproxy checks /healthz
	}
	_, ids := startFleet(t, "lb", 3, m.URL)

	// Log in through haproxy: the session cookie.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.PostForm(h.URL+"/login", url.Values{"name": {user}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) == 0 {
		t.Fatalf("POST /login through haproxy: %s with cookies %v, want 303 and a session cookie", resp.Status, resp.Cookies())
	}
	var cookie []string
	for _, c := range resp.Cookies() {
		cookie = append(cookie, c.Name+"="+c.Value)
	}
	header := http.Header{"Cookie": {strings.Join(cookie, "; ")}}
	wsURL := "ws" + strings.TrimPrefix(h.URL, "http") + "/ws"

	b := dialBrowser(t, wsURL, header, ids)
	serving := -1
	for i, cp := range cps {
		if n, err := browsersOn(cp, user, password); err != nil {
			t.Fatal(err)
		} else if n == 1 {
			serving = i
		}
	}
	if serving < 0 {
		t.Fatal("neither control plane counts the browser in switchyard_browsers_connected")
	}
	other := 1 - serving

	if err := cps[serving].Stop(10 * time.Second); err != nil {
		t.Fatalf("stop control plane %d: %v", serving+1, err)
	}
	if err := b.waitClosed(wait); err != nil {
		t.Fatal(err)
	}
	h.WaitServer(t, serving, false, wait)
	// The browser reconnects, as the dashboard does, with the same cookie:
	// haproxy sends it to the other control plane, which accepts the
	// session and sends the snapshot.
	b = dialBrowser(t, wsURL, header, ids)
	if n, err := browsersOn(cps[other], user, password); err != nil || n != 1 {
		t.Fatalf("control plane %d after the failover: %d browsers, %v; want 1", other+1, n, err)
	}
	// Then live events: a command from this browser comes back as the
	// board's new LED state.
	id := ids[0]
	want := map[string]string{"LED ON": "LED OFF", "LED OFF": "LED ON"}[b.led[id]]
	if err := b.conn.WriteMessage(websocket.TextMessage, []byte(`{"device":"`+id+`","action":"toggle"}`)); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, wait, func(e event) bool { return e.Device == id && e.Label == "ledStatus" && string(e.Value) == `"`+want+`"` })
}

// event is one /ws event; Value is kept as raw JSON.
type event struct {
	Device string          `json:"device"`
	Label  string          `json:"label"`
	Value  json.RawMessage `json:"value"`
}

// browser is a /ws client that has received the snapshot.
type browser struct {
	conn   *websocket.Conn
	events chan event        // everything after the snapshot; closed when the connection ends
	led    map[string]string // from the snapshot: "LED ON" or "LED OFF" by board
}

// dialBrowser connects to wsURL with header, retrying while the balancer
// has no working backend, and reads events until it knows every board in
// ids online with its LED: the snapshot.
func dialBrowser(t *testing.T, wsURL string, header http.Header, ids []string) *browser {
	t.Helper()
	var conn *websocket.Conn
	testutil.WaitFor(t, wait, func() error {
		c, resp, err := websocket.DefaultDialer.Dial(wsURL, header)
		if err != nil {
			if resp != nil {
				err = fmt.Errorf("%w (%s)", err, resp.Status)
			}
			return err
		}
		conn = c
		return nil
	})
	t.Cleanup(func() { conn.Close() })
	b := &browser{conn: conn, events: make(chan event, 1000), led: map[string]string{}}
	go func() { // ends when the connection closes (the test's cleanup, or the server going away)
		defer close(b.events)
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var batch []event
			if err := json.Unmarshal(msg, &batch); err != nil {
				var e event
				if json.Unmarshal(msg, &e) != nil {
					continue
				}
				batch = []event{e}
			}
			for _, e := range batch {
				b.events <- e
			}
		}
	}()
	online := map[string]bool{}
	b.waitFor(t, wait, func(e event) bool {
		switch e.Label {
		case "online":
			online[e.Device] = string(e.Value) == "true"
		case "ledStatus":
			var s string
			_ = json.Unmarshal(e.Value, &s)
			b.led[e.Device] = s
		}
		for _, id := range ids {
			if !online[id] || b.led[id] == "" {
				return false
			}
		}
		return true
	})
	return b
}

// waitFor reads events until match returns true; it fails the test when
// none does within timeout.
func (b *browser) waitFor(t *testing.T, timeout time.Duration, match func(event) bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e, ok := <-b.events:
			if !ok {
				t.Fatal("the browser's connection ended while waiting for an event")
			}
			if match(e) {
				return
			}
		case <-deadline:
			t.Fatalf("the browser got no awaited event within %v", timeout)
		}
	}
}

// waitClosed waits until the server has closed the connection.
func (b *browser) waitClosed(timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		select {
		case _, ok := <-b.events:
			if !ok {
				return nil
			}
		case <-deadline:
			return errors.New("the browser's connection is still open after its control plane stopped")
		}
	}
}

// browsersOn reads switchyard_browsers_connected from cp's /metrics.
func browsersOn(cp *controlPlane, user, password string) (int, error) {
	req, _ := http.NewRequest("GET", cp.url+"/metrics", nil)
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("GET %s/metrics: %s", cp.url, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var n float64
		if _, err := fmt.Sscanf(sc.Text(), "switchyard_browsers_connected %g", &n); err == nil {
			return int(n), nil
		}
	}
	return 0, fmt.Errorf("GET %s/metrics: no switchyard_browsers_connected", cp.url)
}
