package wsgateway_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"switchyard/devices"
	"switchyard/internal/testutil"
	"switchyard/wsgateway"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// paho's and net/http's background goroutines end shortly after close.
		goleak.IgnoreTopFunction("github.com/eclipse/paho%2emqtt%2egolang.(*router).matchAndDispatch"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	)
}

func TestSnapshotOnConnectAndLiveUpdates(t *testing.T) {
	h := newHarness(t, wsgateway.Config{Declared: []devices.Declared{{ID: "declared", Name: "Declared board"}}})
	// A declared device is known before any board speaks.
	if m := h.metrics(); !strings.Contains(m, "switchyard_devices_known 1\n") {
		t.Errorf("metrics before any board: %s, want switchyard_devices_known 1", grep(m, "switchyard_devices"))
	}
	b := h.board("b1")
	b.online("ON")
	b.pub(devices.KindCount, "5", false)
	h.waitDevice("b1", func(d apiDevice) bool { return d.Count != nil && *d.Count == 5 })

	br := h.browser("/ws", nil)
	// The snapshot: every known device, sorted by id, as the contract's events.
	var got []string
	for range 5 {
		e, err := br.next()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.String())
	}
	want := []string{
		`b1/online=true`, `b1/ledStatus="LED ON"`, `b1/count=5`,
		`b1/info={"id":"b1","firmware":"test","board":"paho"}`,
		`declared/online=false`,
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("snapshot:\n got %v\nwant %v", got, want)
	}
	if br.frames != 1 || br.arrays != 1 {
		t.Errorf("snapshot came in %d frames (%d arrays), want one array", br.frames, br.arrays)
	}

	b.pub(devices.KindCount, "6", false)
	br.waitFor("b1", "count", "6")
	b.pub(devices.KindStatus, "offline", true)
	br.waitFor("b1", "online", "false")

	// A new board appears on an open page.
	b2 := h.board("b2")
	b2.pub(devices.KindCount, "0", false)
	br.waitFor("b2", "count", "0")
}

func TestToggleReachesBoardAndEveryBrowser(t *testing.T) {
	h := newHarness(t, wsgateway.Config{})
	cmds := h.subscribe("devices/+/led/set")
	b := h.onlineBoard("b1", "OFF")

	b1, b2 := h.browser("/ws", nil), h.browser("/ws", nil)
	b1.waitFor("b1", "ledStatus", `"LED OFF"`)
	b2.waitFor("b1", "ledStatus", `"LED OFF"`)

	b1.send(`{"device":"b1","action":"toggle"}`)
	m := recvMQTT(t, cmds, "led/set")
	if m.Topic() != "devices/b1/led/set" || string(m.Payload()) != "TOGGLE" || m.Retained() {
		t.Fatalf("command = %s %q retained=%v, want devices/b1/led/set TOGGLE not retained", m.Topic(), m.Payload(), m.Retained())
	}
	if m.Qos() != 1 {
		t.Errorf("command QoS %d, want 1", m.Qos())
	}
	b.pub(devices.KindLED, "ON", true) // the board's confirmation
	b1.waitFor("b1", "ledStatus", `"LED ON"`)
	b2.waitFor("b1", "ledStatus", `"LED ON"`)

	for _, tc := range []struct{ action, payload string }{{"ON", "ON"}, {"off", "OFF"}, {"Toggle", "TOGGLE"}} {
		b2.send(fmt.Sprintf(`{"device":"b1","action":%q}`, tc.action))
		if m := recvMQTT(t, cmds, tc.action); string(m.Payload()) != tc.payload {
			t.Errorf("action %s published %q, want %q", tc.action, m.Payload(), tc.payload)
		}
	}
	// An unchanged LED state is still broadcast: it confirms a command.
	b.pub(devices.KindLED, "ON", true)
	b1.waitFor("b1", "ledStatus", `"LED ON"`)
}

func TestBrowserMessagesRefused(t *testing.T) {
	h := newHarness(t, wsgateway.Config{Declared: []devices.Declared{{ID: "sleepy"}}})
	cmds := h.subscribe("devices/#")
	h.onlineBoard("b1", "OFF")
	br := h.browser("/ws", nil)
	for _, tc := range []struct{ msg, device, want string }{
		{`not json`, "", "not a JSON object"},
		{`{"device":"b1","action":"toggle"`, "", "invalid JSON"},
		{`{"device":"b1","action":"explode"}`, "b1", `unknown action "explode"`},
		{`{"device":"b/1","action":"toggle"}`, "", "invalid device id"},
		{`{"action":"toggle"}`, "", `missing "device"`},
		{`{"device":"ghost","action":"toggle"}`, "ghost", `unknown device "ghost"`},
		{`{"device":"sleepy","action":"on"}`, "sleepy", "offline"},
	} {
		br.send(tc.msg)
		e := br.waitFor(tc.device, "error", "")
		var msg string
		if err := json.Unmarshal(e.Value, &msg); err != nil || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: error %s, want a string containing %q", tc.msg, e.Value, tc.want)
		}
	}
	// The connection stays open and still works.
	br.send(`{"device":"b1","action":"on"}`)
	for {
		m := recvMQTT(t, cmds, "the valid command")
		if strings.HasSuffix(m.Topic(), "/led/set") {
			if m.Topic() != "devices/b1/led/set" || string(m.Payload()) != "ON" {
				t.Fatalf("refused messages published %s %q", m.Topic(), m.Payload())
			}
			break
		}
	}
}

func TestOversizeMessageClosesOnlyThatBrowser(t *testing.T) {
	h := newHarness(t, wsgateway.Config{})
	b := h.board("b1")
	b.online("OFF")
	good, bad := h.browser("/ws", nil), h.browser("/ws", nil)
	good.waitFor("b1", "ledStatus", "")
	bad.waitFor("b1", "ledStatus", "")
	bad.send(`{"device":"b1","action":"` + strings.Repeat("x", devices.MaxBrowserMessage) + `"}`)
	if err := readUntilEnd(bad.conn); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("oversize message: %v, want close 1009", err)
	}
	b.pub(devices.KindCount, "1", false)
	good.waitFor("b1", "count", "1")
}

func TestOriginCheck(t *testing.T) {
	h := newHarness(t, wsgateway.Config{AllowedOrigins: []string{"http://allowed.example"}})
	host := strings.TrimPrefix(h.http.URL, "http://")
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://" + host, true},
		{"http://allowed.example", true},
		{"http://evil.example", false},
		{"null", false},
	} {
		hdr := http.Header{}
		if tc.origin != "" {
			hdr.Set("Origin", tc.origin)
		}
		conn, resp, err := websocket.DefaultDialer.Dial(h.wsURL("/ws"), hdr)
		if tc.ok {
			if err != nil {
				t.Errorf("origin %q refused: %v", tc.origin, err)
				continue
			}
			conn.Close()
		} else if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("origin %q: err %v, want HTTP 403", tc.origin, err)
			if conn != nil {
				conn.Close()
			}
		}
	}
}

func TestSingleBoardEndpoint(t *testing.T) {
	h := newHarness(t, wsgateway.Config{})
	cmds := h.subscribe("devices/+/led/set")
	b := h.board("b1")
	b.online("ON")
	b.pub(devices.KindCount, "3", false)
	h.waitDevice("b1", func(d apiDevice) bool { return d.Count != nil })
	for _, path := range []string{"/ws/ghost", "/ws/bad%20id", "/ws/" + strings.Repeat("a", 65)} {
		_, resp, err := websocket.DefaultDialer.Dial(h.wsURL(path), nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %v, want HTTP 404", path, err)
		}
	}

	br := h.browser("/ws/b1", nil)
	read := func() string {
		t.Helper()
		_ = br.conn.SetReadDeadline(time.Now().Add(wait))
		_, data, err := br.conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	if got, want := read(), `{"label":"ledStatus","value":"LED ON"}`; got != want {
		t.Errorf("first frame %s, want %s", got, want)
	}
	if got, want := read(), `{"label":"count","value":3}`; got != want {
		t.Errorf("second frame %s, want %s", got, want)
	}
	br.send("toggle")
	if m := recvMQTT(t, cmds, "led/set"); m.Topic() != "devices/b1/led/set" || string(m.Payload()) != "TOGGLE" {
		t.Errorf("toggle published %s %q", m.Topic(), m.Payload())
	}
	br.send("OFF")
	if m := recvMQTT(t, cmds, "led/set"); string(m.Payload()) != "OFF" {
		t.Errorf("OFF published %q", m.Payload())
	}
	br.send("explode")
	if got := read(); !strings.HasPrefix(got, `{"label":"error","value":"`) || !strings.Contains(got, "explode") {
		t.Errorf("bad text answered %s", got)
	}
	// Several events at once still come one object per frame.
	for i := 10; i < 20; i++ {
		b.pub(devices.KindCount, fmt.Sprint(i), false)
	}
	b.pub(devices.KindStatus, "online", true) // not part of this dialect
	b.pub(devices.KindLED, "OFF", true)
	for {
		got := read()
		if strings.HasPrefix(got, "[") || strings.Contains(got, `"device"`) || strings.Contains(got, "online") {
			t.Fatalf("frame %s is not in the single-board dialect", got)
		}
		if got == `{"label":"ledStatus","value":"LED OFF"}` {
			break
		}
	}
}

func TestRESTAPI(t *testing.T) {
	h := newHarness(t, wsgateway.Config{Declared: []devices.Declared{{ID: "zz", Name: "Last"}}})
	cmds := h.subscribe("devices/+/led/set")
	b := h.board("b1")
	b.online("ON")
	b.pub(devices.KindCount, "9", false)
	h.waitDevice("b1", func(d apiDevice) bool { return d.Count != nil })
	h.board("a0").pub(devices.KindStatus, "offline", true)
	h.waitDevice("a0", func(apiDevice) bool { return true })

	var list []apiDevice
	if code := h.do("GET", "/api/devices", "", &list); code != http.StatusOK {
		t.Fatalf("GET /api/devices = %d", code)
	}
	var ids []string
	for _, d := range list {
		ids = append(ids, d.ID)
	}
	if got := strings.Join(ids, ","); got != "a0,b1,zz" {
		t.Errorf("ids %s, want a0,b1,zz (sorted)", got)
	}
	b1, zz := list[1], list[2]
	if !b1.Online || b1.LED == nil || *b1.LED != "ON" || b1.Count == nil || *b1.Count != 9 || b1.Name != "b1" || b1.LastSeen == nil {
		t.Errorf("b1 = %+v", b1)
	} else if _, err := time.Parse(time.RFC3339, *b1.LastSeen); err != nil {
		t.Errorf("last_seen %q is not RFC 3339", *b1.LastSeen)
	}
	if zz.Name != "Last" || zz.Online || zz.LED != nil || zz.Count != nil || zz.LastSeen != nil || string(zz.Info) != "null" && zz.Info != nil {
		t.Errorf("declared zz = %+v", zz)
	}
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/api/devices/b1", "", 200},
		{"GET", "/api/devices/ghost", "", 404},
		{"GET", "/api/devices/bad%20id", "", 404},
		{"POST", "/api/devices/ghost/led", `{"action":"toggle"}`, 404},
		{"POST", "/api/devices/bad%20id/led", `garbage`, 404}, // device checked first
		{"POST", "/api/devices/b1/led", `garbage`, 400},
		{"POST", "/api/devices/b1/led", `{"action":"explode"}`, 400},
		{"POST", "/api/devices/b1/led", `{}`, 400},
		{"POST", "/api/devices/b1/led", `{"action":"toggle"} x`, 400},
		{"POST", "/api/devices/a0/led", `{"action":"on"}`, 409},
		{"POST", "/api/devices/b1/led", `{"action":"off"}`, 202},
		{"DELETE", "/api/devices/ghost", "", 404},
	} {
		var body map[string]any
		if got := h.do(tc.method, tc.path, tc.body, &body); got != tc.want {
			t.Errorf("%s %s %s = %d, want %d (%v)", tc.method, tc.path, tc.body, got, tc.want, body)
		} else if got >= 400 && body["error"] == nil {
			t.Errorf("%s %s: no error message in %v", tc.method, tc.path, body)
		}
	}
	if m := recvMQTT(t, cmds, "led/set from the API"); m.Topic() != "devices/b1/led/set" || string(m.Payload()) != "OFF" {
		t.Errorf("API published %s %q", m.Topic(), m.Payload())
	}
	select {
	case m := <-cmds:
		t.Errorf("a refused request published %s %q", m.Topic(), m.Payload())
	default:
	}
}

func TestForgetDevice(t *testing.T) {
	h := newHarness(t, wsgateway.Config{})
	b := h.board("b1")
	b.online("ON")
	h.waitDevice("b1", func(d apiDevice) bool { return d.LED != nil })
	br := h.browser("/ws", nil)
	br.waitFor("b1", "ledStatus", "")
	single := h.browser("/ws/b1", nil)
	if e, err := single.next(); err != nil || e.Label != "ledStatus" {
		t.Fatalf("single-board snapshot: %v %v", e, err)
	}

	if code := h.do("DELETE", "/api/devices/b1", "", nil); code != http.StatusNoContent {
		t.Fatalf("DELETE = %d, want 204", code)
	}
	br.waitFor("b1", "removed", "true")
	if code := h.do("GET", "/api/devices/b1", "", nil); code != http.StatusNotFound {
		t.Errorf("GET after DELETE = %d, want 404", code)
	}
	// Every retained topic of the board is cleared: a new subscriber gets none.
	retained := h.subscribe("devices/b1/#")
	select {
	case m := <-retained:
		t.Errorf("retained message survived: %s %q", m.Topic(), m.Payload())
	case <-time.After(300 * time.Millisecond): // absence: nothing to wait on but time
	}
	// A /ws/<id> page of a forgotten board is closed.
	if err := readUntilEnd(single.conn); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("single-board page after forget: %v, want close 1001", err)
	}
	// A board that publishes again is known again; one that counts is
	// connected, so online, though its retained status was cleared.
	b.pub(devices.KindCount, "1", false)
	br.waitFor("b1", "online", "true")
	br.waitFor("b1", "count", "1")
	if d := h.waitDevice("b1", func(apiDevice) bool { return true }); !d.Online {
		t.Errorf("forgotten board counting again: %+v, want online", d)
	}
}

func TestSlowBrowserIsDroppedOthersKeepUp(t *testing.T) {
	h := newHarness(t, wsgateway.Config{QueueBytes: 512 << 10})
	b := h.onlineBoard("b1", "OFF")
	good := h.browser("/ws", nil)
	good.waitFor("b1", "ledStatus", "")
	// The slow browser never reads, and its receive buffer is tiny.
	slow := h.dial(&tinyReadBuffer, h.wsURL("/ws"))

	// ~12 MB in batches of 300 kB, each sent once the good browser has the
	// last: more than loopback socket buffers and the queue bound hold for
	// the slow one, never more than the bound behind for the good one.
	big := `{"id":"b1","firmware":"test","board":"paho","pad":"` + strings.Repeat("x", 3000) + `"}`
	for i := 1; i <= 4000; i++ {
		b.pub(devices.KindInfo, big, false)
		if i%100 == 0 {
			b.pub(devices.KindCount, fmt.Sprint(i), false)
			good.waitFor("b1", "count", fmt.Sprint(i))
		}
	}
	h.wantDroppedSlow(slow)
}

// wantDroppedSlow checks that slow, the one browser that did not read, was
// dropped and counted, and that the other stays.
func (h *harness) wantDroppedSlow(slow *websocket.Conn) {
	h.t.Helper()
	metrics := h.metrics()
	for _, want := range []string{"switchyard_browsers_dropped_slow_total 1", "switchyard_browsers_connected 1"} {
		if !strings.Contains(metrics, want) {
			h.t.Errorf("metrics lack %q:\n%s", want, grep(metrics, "switchyard_"))
		}
	}
	// The slow browser was disconnected: once it reads, the stream ends.
	var ne net.Error
	if err := readUntilEnd(slow); errors.As(err, &ne) && ne.Timeout() {
		h.t.Errorf("slow browser still connected: %v", err)
	}
}

func (h *harness) metrics() string {
	h.t.Helper()
	resp, err := http.Get(h.http.URL + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return string(data)
}

func grep(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestHealthzMetricsAndDashboard(t *testing.T) {
	h := newHarness(t, wsgateway.Config{})
	if code := h.do("GET", "/healthz", "", nil); code != http.StatusOK {
		t.Errorf("healthz = %d", code)
	}
	cmds := h.subscribe("devices/+/led/set")
	b := h.board("b1")
	b.online("OFF")
	br := h.browser("/ws", nil)
	br.waitFor("b1", "ledStatus", "")
	br.send(`{"device":"b1","action":"toggle"}`)
	recvMQTT(t, cmds, "the command")
	b.pub(devices.KindLED, "ON", true)
	br.waitFor("b1", "ledStatus", `"LED ON"`)
	// The counter moves just after the publish returns: poll for it.
	h.waitFor(func() bool { return strings.Contains(h.metrics(), "switchyard_commands_published_total 1") })
	m := h.metrics()
	for _, want := range []string{
		"switchyard_browsers_connected 1",
		"switchyard_devices_known 1",
		"switchyard_devices_online 1",
		"switchyard_commands_published_total 1",
		"switchyard_browsers_dropped_slow_total 0",
		"switchyard_events_broadcast_total ",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, grep(m, "switchyard_"))
		}
	}
	resp, err := http.Get(h.http.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Switchyard") {
		t.Errorf("GET / = %d %.200s", resp.StatusCode, page)
	}
	for _, asset := range []string{"/app.js", "/updates.js", "/style.css"} {
		if code := h.do("GET", asset, "", nil); code != 200 {
			t.Errorf("GET %s = %d", asset, code)
		}
	}
	if strings.Contains(string(page), "//cdn") || strings.Contains(string(page), "https://") {
		t.Error("the dashboard refers to an external resource")
	}
	h.gw.Close()
	if code := h.do("GET", "/healthz", "", nil); code != http.StatusServiceUnavailable {
		t.Errorf("healthz after close = %d, want 503", code)
	}
}

func TestCloseSendsGoingAway(t *testing.T) {
	h := newHarness(t, wsgateway.Config{})
	br := h.browser("/ws", nil)
	done := make(chan error, 1)
	go func() { done <- readUntilEnd(br.conn) }() // ends when the connection closes or after wait
	h.gw.Close()
	h.gw.Close() // idempotent
	if err := testutil.Recv(t, done, 2*wait, "the browser's connection to end"); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		var ce *websocket.CloseError
		t.Errorf("close: %v (close error: %v), want 1001", err, errors.As(err, &ce))
	}
}

func TestPingKeepsLiveBrowsersAndDropsSilentOnes(t *testing.T) {
	h := newHarness(t, wsgateway.Config{PingInterval: 50 * time.Millisecond, PongWait: 400 * time.Millisecond})
	b := h.board("b1")
	b.online("OFF")
	live := h.browser("/ws", nil)
	live.waitFor("b1", "ledStatus", "")
	pings := make(chan struct{}, 100)
	live.conn.SetPingHandler(func(data string) error {
		pings <- struct{}{}
		return live.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	silent := h.browser("/ws", nil) // never reads, so never answers a ping
	// The live one answers ten pings: well past PongWait, it is still there.
	go func() { // ends when the live connection is closed at cleanup
		for {
			if _, _, err := live.conn.NextReader(); err != nil {
				return
			}
		}
	}()
	for range 10 {
		select {
		case <-pings:
		case <-time.After(wait):
			t.Fatal("no ping from the server")
		}
	}
	h.waitFor(func() bool { return strings.Contains(h.metrics(), "switchyard_browsers_connected 1\n") })
	var ne net.Error
	if err := readUntilEnd(silent.conn); errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("silent browser not dropped: %v", err)
	}
}

// TestLaggingBrowserGetsEveryFrameIntact: a browser whose socket fills (it
// does not read for a while; the server's send buffer is small) is written
// by a goroutine of its own from the middle of a frame on; when it reads
// again it gets every event, in order, in well-formed frames, and the pong
// to the ping it sent while behind (queued behind the frame in progress)
// does not cut into a frame. Nobody is dropped.
func TestLaggingBrowserGetsEveryFrameIntact(t *testing.T) {
	h := newHarness(t, wsgateway.Config{QueueBytes: 64 << 20})
	b := h.onlineBoard("b1", "OFF")
	good := h.browser("/ws", nil)
	good.waitFor("b1", "ledStatus", "")
	lag := h.dial(websocket.DefaultDialer, h.smallSendServer()+"/ws")
	pong := make(chan string, 1)
	lag.SetPongHandler(func(data string) error {
		select {
		case pong <- data:
		default:
		}
		return nil
	})

	// ~1 MB, paced by the good browser: more than the lagging browser's
	// receive buffer and the server's send buffer take while it does not
	// read.
	big := `{"id":"b1","firmware":"test","board":"paho","pad":"` + strings.Repeat("y", 3000) + `"}`
	const last, every = 300, 50
	for i := 1; i <= last; i++ {
		b.pub(devices.KindInfo, big, false)
		if i%every == 0 {
			b.pub(devices.KindCount, fmt.Sprint(i), false)
			good.waitFor("b1", "count", fmt.Sprint(i))
		}
		if i == last/2 {
			if err := lag.WriteControl(websocket.PingMessage, []byte("behind"), time.Now().Add(wait)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if m := h.metrics(); !strings.Contains(m, "switchyard_browsers_dropped_slow_total 0") ||
		!regexp.MustCompile(`(?m)^switchyard_browser_writes_waited_total [1-9]`).MatchString(m) {
		t.Errorf("want nobody dropped and some writes waited for:\n%s", grep(m, "switchyard_browser"))
	}

	// Now it reads, and gets every count, in order, each frame valid JSON.
	lb := &browser{t: t, conn: lag}
	for next := every; next <= last; {
		ev, err := lb.next()
		if err != nil {
			t.Fatalf("lagging browser, waiting for count %d: %v", next, err)
		}
		if ev.Device != "b1" || ev.Label != "count" {
			continue
		}
		if got := string(ev.Value); got != fmt.Sprint(next) {
			t.Fatalf("count %s, want %d (in order, none missing)", got, next)
		}
		next += every
	}
	select {
	case p := <-pong:
		if p != "behind" {
			t.Errorf("pong %q, want %q", p, "behind")
		}
	default:
		t.Error("no pong to the ping sent while behind")
	}
}

// tinyReadBuffer dials with a 4 KiB receive buffer: a browser that does
// not read fills it at once.
var tinyReadBuffer = websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
	c, err := net.Dial(network, addr)
	if err == nil {
		_ = c.(*net.TCPConn).SetReadBuffer(4096)
	}
	return c, err
}}

// smallSendServer starts a second server for h's gateway whose sockets
// have a 16 KiB send buffer (a browser's fills after a few frames) and
// returns its ws:// base URL.
func (h *harness) smallSendServer() string {
	h.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	small := httptest.NewUnstartedServer(h.gw.Handler())
	small.Listener = smallSendBuffer{ln}
	small.Start()
	h.t.Cleanup(small.Close)
	return "ws" + strings.TrimPrefix(small.URL, "http")
}

// smallSendBuffer gives every accepted connection a 16 KiB send buffer.
type smallSendBuffer struct{ net.Listener }

func (l smallSendBuffer) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		_ = c.(*net.TCPConn).SetWriteBuffer(16 << 10)
	}
	return c, err
}

// TestBrowserPingsAreAnswered: a browser's pings, with or without a
// payload, get their pongs (the writer sends them, between frames).
func TestBrowserPingsAreAnswered(t *testing.T) {
	h := newHarness(t, wsgateway.Config{})
	for _, payload := range []string{"", "hello"} {
		br := h.browser("/ws", nil)
		pongs := make(chan string, 1)
		br.conn.SetPongHandler(func(data string) error { pongs <- data; return nil })
		if err := br.conn.WriteControl(websocket.PingMessage, []byte(payload), time.Now().Add(wait)); err != nil {
			t.Fatal(err)
		}
		// Control frames are handled while reading; there is no event to
		// read, so the reader ends at its deadline or when conn closes.
		_ = br.conn.SetReadDeadline(time.Now().Add(wait))
		go func() { // ends when the read fails
			for {
				if _, _, err := br.conn.ReadMessage(); err != nil {
					return
				}
			}
		}()
		select {
		case got := <-pongs:
			if got != payload {
				t.Errorf("pong %q, want %q", got, payload)
			}
		case <-time.After(wait):
			t.Errorf("no pong to ping %q", payload)
		}
		br.conn.Close()
	}
}

// TestCloseRequestedWhileAWriteIsStuck: a browser that does not read has
// its writer stuck in a write when a graceful close is asked for (here:
// its board is forgotten). The close frame cannot be sent, so when the
// write times out (WriteWait) the connection is closed all the same,
// rather than left open until PongWait.
func TestCloseRequestedWhileAWriteIsStuck(t *testing.T) {
	h := newHarness(t, wsgateway.Config{QueueBytes: 64 << 20, WriteWait: 2 * time.Second, PongWait: time.Minute})
	b := h.onlineBoard("b1", "OFF")
	h.dial(&tinyReadBuffer, h.smallSendServer()+"/ws/b1") // never reads

	// ~200 KB of count frames for a browser whose socket takes ~40 KB:
	// its writer is stuck when the forget (queued after them) closes it.
	for i := range 5000 {
		b.pub(devices.KindCount, fmt.Sprint(i), false)
	}
	if code := h.do("DELETE", "/api/devices/b1", "", nil); code/100 != 2 {
		t.Fatalf("DELETE = %d", code)
	}
	h.waitFor(func() bool { return strings.Contains(h.metrics(), "\nswitchyard_browsers_connected 0\n") })
}
