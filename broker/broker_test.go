package broker

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"switchyard/devices"
	"switchyard/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/eclipse/paho%2emqtt%2egolang.(*router).matchAndDispatch"),
		// Mochi's per-client write loop ends just after its connection closes.
		goleak.IgnoreTopFunction("github.com/mochi-mqtt/server/v2.(*Client).WriteLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

const wait = 5 * time.Second

func startBroker(t *testing.T, cfg Config) *Broker {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func connect(t *testing.T, url, id string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).
		SetAutoReconnect(false).SetConnectTimeout(wait))
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

func publish(t *testing.T, c paho.Client, topic, payload string, retain bool) {
	t.Helper()
	if tok := c.Publish(topic, 1, retain, payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// retained subscribes a fresh client to filter and collects the retained
// messages it gets until every one of want topics has arrived.
func retained(t *testing.T, url, filter string, want ...string) map[string]string {
	t.Helper()
	var mu sync.Mutex
	got := map[string]string{}
	all := make(chan struct{})
	var once sync.Once
	c := connect(t, url, fmt.Sprintf("observer-%d", time.Now().UnixNano()))
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		mu.Lock()
		defer mu.Unlock()
		if m.Retained() {
			got[m.Topic()] = string(m.Payload())
		}
		for _, w := range want {
			if _, ok := got[w]; !ok {
				return
			}
		}
		once.Do(func() { close(all) })
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	select {
	case <-all:
	case <-time.After(wait):
		mu.Lock()
		t.Fatalf("retained on %s: got %v, want topics %v", filter, got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	out := map[string]string{}
	for k, v := range got {
		out[k] = v
	}
	return out
}

func TestRetainedSurviveRestartAndStatusTurnsOffline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "retained.log")
	b := startBroker(t, Config{StoragePath: path})
	url := "tcp://" + b.Addr().String()
	c := connect(t, url, "b1")
	publish(t, c, "devices/b1/status", "online", true)
	publish(t, c, "devices/b1/led", "ON", true)
	publish(t, c, "devices/b1/info", `{"id":"b1"}`, true)
	publish(t, c, "devices/b2/led", "OFF", true)
	publish(t, c, "devices/b2/led", "", true) // cleared
	publish(t, c, "other/thing", "kept", true)
	publish(t, c, "devices/b1/count", "5", false)
	retained(t, url, "#", "devices/b1/status", "devices/b1/led", "devices/b1/info", "other/thing")
	c.Disconnect(0)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	b2 := startBroker(t, Config{StoragePath: path})
	got := retained(t, "tcp://"+b2.Addr().String(), "#", "devices/b1/status", "devices/b1/led", "devices/b1/info", "other/thing")
	want := map[string]string{
		"devices/b1/status": "offline", // no board is connected to a broker that just started
		"devices/b1/led":    "ON",
		"devices/b1/info":   `{"id":"b1"}`,
		"other/thing":       "kept",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after restart got %v, want %v", got, want)
	}
}

func TestStorePrefixAndCorruption(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.log")
	l, err := openRetainLog(path, devices.MustTopics("home/boards"), discard())
	if err != nil {
		t.Fatal(err)
	}
	l.put("home/boards/x/status", retainRecord{qos: 1, created: 100, payload: []byte("online")})
	l.put("devices/x/status", retainRecord{qos: 1, created: 100, payload: []byte("online")})
	l.put("home/boards/x/led", retainRecord{qos: 1, created: 100, payload: []byte("OFF")})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// A torn last record (a crash mid-write) is dropped; the rest survive.
	data, _ := os.ReadFile(path)
	torn := appendRecord(nil, "home/boards/x/led", retainRecord{qos: 1, payload: []byte("ON")})
	if err := os.WriteFile(path, append(data, torn[:len(torn)-3]...), 0o644); err != nil {
		t.Fatal(err)
	}
	live, n, err := readRetainLog(path)
	if err != nil || n != len(torn)-3 {
		t.Fatalf("readRetainLog: torn %d, %v; want torn %d", n, err, len(torn)-3)
	}
	if got := string(live["home/boards/x/led"].payload); got != "OFF" {
		t.Errorf("led = %q, want OFF (the torn ON never completed)", got)
	}
	l, err = openRetainLog(path, devices.MustTopics("home/boards"), discard())
	if err != nil {
		t.Fatal(err)
	}
	msgs, _ := l.StoredRetainedMessages()
	l.Close()
	got := map[string]string{}
	for _, m := range msgs {
		got[m.TopicName] = string(m.Payload)
		if !m.FixedHeader.Retain || m.Created != 100 {
			t.Errorf("%s: retain %v created %d", m.TopicName, m.FixedHeader.Retain, m.Created)
		}
	}
	want := map[string]string{
		"home/boards/x/status": "offline", // under the prefix: rewritten
		"devices/x/status":     "online",  // not a board topic of this prefix
		"home/boards/x/led":    "OFF",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("restored %v, want %v", got, want)
	}
	// A flipped bit in the middle: that record and what follows are dropped,
	// nothing panics, and the file is compacted to what was intact.
	data, _ = os.ReadFile(path)
	data[len(logMagic)+recordHeader+3] ^= 0xff
	os.WriteFile(path, data, 0o644)
	if _, n, err := readRetainLog(path); err != nil || n == 0 {
		t.Errorf("corrupt record: torn %d, %v; want it detected", n, err)
	}

	foreign := filepath.Join(dir, "notes.txt")
	os.WriteFile(foreign, []byte("my notes"), 0o644)
	if _, err := openRetainLog(foreign, devices.MustTopics(""), discard()); err == nil || !strings.Contains(err.Error(), "not a Switchyard") {
		t.Errorf("foreign file: %v", err)
	}
	if b, _ := os.ReadFile(foreign); string(b) != "my notes" {
		t.Error("foreign file was overwritten")
	}
}

func TestCompactionKeepsLatest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.log")
	l, err := loadRetainLog(path, devices.MustTopics(""), discard()) // no writer: the test is the writer
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(strings.Repeat("p", 1000))
	for i := range 3000 { // ~3 MB of history for 10 topics: compacts
		l.put(fmt.Sprintf("devices/b%d/info", i%10), retainRecord{payload: append(payload, fmt.Sprint(i)...)})
		l.flush() // one group commit each, as the writer would under load
	}
	l.f.Close()
	st, _ := os.Stat(path)
	if st.Size() > 1<<20+20_000 {
		t.Errorf("log is %d bytes for 10 live records: not compacted", st.Size())
	}
	live, torn, err := readRetainLog(path)
	if err != nil || torn != 0 || len(live) != 10 {
		t.Fatalf("after compaction: %d live, torn %d, %v", len(live), torn, err)
	}
	if got := string(live["devices/b9/info"].payload[1000:]); got != "2999" {
		t.Errorf("b9 = %s, want the last write 2999", got)
	}
}

func TestInlineSubscribePublishClear(t *testing.T) {
	b := startBroker(t, Config{})
	got := make(chan Message, 16)
	if err := b.Subscribe("devices/+/+", func(m Message) {
		m.Payload = append([]byte(nil), m.Payload...)
		got <- m
	}); err != nil {
		t.Fatal(err)
	}
	url := "tcp://" + b.Addr().String()
	c := connect(t, url, "b1")
	publish(t, c, "devices/b1/led", "ON", true)
	select {
	case m := <-got:
		if m.Topic != "devices/b1/led" || string(m.Payload) != "ON" || time.Since(m.Created) > time.Minute {
			t.Errorf("inline got %+v", m)
		}
	case <-time.After(wait):
		t.Fatal("inline subscriber got nothing")
	}
	cmds := make(chan string, 1)
	c.Subscribe("devices/b1/led/set", 1, func(_ paho.Client, m paho.Message) { cmds <- string(m.Payload()) }).WaitTimeout(wait)
	if err := b.Publish("devices/b1/led/set", []byte("TOGGLE"), false, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-cmds:
		if p != "TOGGLE" {
			t.Errorf("board got %q", p)
		}
	case <-time.After(wait):
		t.Fatal("board got no command")
	}
	n, err := b.ClearRetained("devices/b1/#")
	if err != nil || n != 1 {
		t.Errorf("ClearRetained = %d, %v; want 1", n, err)
	}
	if msgs := b.srv.Topics.Messages("devices/#"); len(msgs) != 0 {
		t.Errorf("retained left: %d", len(msgs))
	}
	if b.Healthy() != nil {
		t.Error("serving broker unhealthy")
	}
	b.Close()
	if b.Healthy() == nil || b.Publish("x", nil, false, 0) == nil {
		t.Error("closed broker still healthy or publishing")
	}
}

func TestWebSocketListener(t *testing.T) {
	var logs testutil.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := startBroker(t, Config{WSListen: "127.0.0.1:0", AllowedOrigins: []string{"http://app.example"}, Logger: log})
	ws := b.WSAddr().String()
	c := connect(t, "ws://"+ws+"/mqtt", "ws-client")
	publish(t, c, "devices/w1/led", "ON", true)
	got := retained(t, "tcp://"+b.Addr().String(), "devices/#", "devices/w1/led")
	if got["devices/w1/led"] != "ON" {
		t.Errorf("over websocket: %v", got)
	}
	for _, tc := range []struct {
		origin, path string
		want         int
	}{
		{"http://evil.example", "/mqtt", http.StatusForbidden},
		{"http://app.example", "/other", http.StatusNotFound},
	} {
		hdr := http.Header{"Origin": {tc.origin}, "Sec-WebSocket-Protocol": {"mqtt"}}
		conn, resp, err := websocket.DefaultDialer.Dial("ws://"+ws+tc.path, hdr)
		if err == nil {
			conn.Close()
		}
		if resp == nil || resp.StatusCode != tc.want {
			t.Errorf("%s %s: %v, want HTTP %d", tc.origin, tc.path, err, tc.want)
		}
	}
	// A clean stop logs no error (Close waits for the listener's Serve).
	b.Close()
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("errors logged by a clean stop:\n%s", logs.String())
	}
}

func TestPortInUseNamesTheAddress(t *testing.T) {
	b := startBroker(t, Config{})
	_, err := New(Config{Listen: b.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), "listen mqtt "+b.Addr().String()) {
		t.Errorf("second broker on %s: %v", b.Addr(), err)
	}
}

// TestStoredRetainedComeBeforeLiveMessages subscribes before Start, as the
// control plane does: the stored (offline) status must reach the
// subscriber before a board's fresh online, never after it.
func TestStoredRetainedComeBeforeLiveMessages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.log")
	b := startBroker(t, Config{StoragePath: path})
	c := connect(t, "tcp://"+b.Addr().String(), "b1")
	publish(t, c, "devices/b1/status", "online", true)
	c.Disconnect(0)
	b.Close()

	b2, err := New(Config{Listen: b.Addr().String(), StoragePath: path})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	got := make(chan string, 10)
	if err := b2.Subscribe("devices/+/+", func(m Message) { got <- string(m.Payload) }); err != nil {
		t.Fatal(err)
	}
	if err := b2.Start(); err != nil {
		t.Fatal(err)
	}
	c2 := connect(t, "tcp://"+b2.Addr().String(), "b1")
	publish(t, c2, "devices/b1/status", "online", true)
	var seen []string
	for range 2 {
		select {
		case p := <-got:
			seen = append(seen, p)
		case <-time.After(wait):
			t.Fatalf("saw only %v", seen)
		}
	}
	if fmt.Sprint(seen) != "[offline online]" {
		t.Errorf("subscriber saw %v, want the stored offline, then the live online", seen)
	}
}

func TestDeviceLimitBoundsRetained(t *testing.T) {
	b := startBroker(t, Config{MaxDevices: 3})
	url := "tcp://" + b.Addr().String()
	c := connect(t, url, "flood")
	for i := range 6 { // QoS 1: every publish is acknowledged, also the dropped ones
		publish(t, c, fmt.Sprintf("devices/d%d/status", i), "online", true)
	}
	publish(t, c, "devices/d0/led", "ON", true) // a known device is never refused
	got := retained(t, url, "devices/#", "devices/d0/status", "devices/d1/status", "devices/d2/status", "devices/d0/led")
	if len(got) != 4 {
		t.Errorf("retained after a flood of 6 ids with a limit of 3: %v", got)
	}
	if !c.IsConnectionOpen() {
		t.Error("the flooding client was disconnected instead of acknowledged")
	}
	// Forgetting a device makes room for another.
	if _, err := b.ClearRetained("devices/d1/#"); err != nil {
		t.Fatal(err)
	}
	publish(t, c, "devices/d9/status", "online", true)
	got = retained(t, url, "devices/#", "devices/d0/status", "devices/d0/led", "devices/d2/status", "devices/d9/status")
	if _, ok := got["devices/d1/status"]; ok || len(got) != 4 {
		t.Errorf("after forgetting d1: %v", got)
	}
}

// TestClientLocalAddr: the local address of a board's connection is the
// listener's address it reached, over TCP and over WebSocket; a client not
// connected has none.
func TestClientLocalAddr(t *testing.T) {
	b := startBroker(t, Config{WSListen: "127.0.0.1:0"})
	if a, ok := b.ClientLocalAddr("b1"); ok {
		t.Fatalf("before connecting: %v, want none", a)
	}
	c := connect(t, "tcp://"+b.Addr().String(), "b1")
	connect(t, "ws://"+b.WSAddr().String()+"/mqtt", "w1")
	for id, want := range map[string]string{"b1": b.Addr().String(), "w1": b.WSAddr().String()} {
		if a, ok := b.ClientLocalAddr(id); !ok || a.String() != want {
			t.Errorf("ClientLocalAddr(%s) = %v, %v; want %s", id, a, ok, want)
		}
	}
	c.Disconnect(0)
	testutil.WaitFor(t, wait, testutil.Until("b1 gone", func() bool {
		_, ok := b.ClientLocalAddr("b1")
		return !ok
	}))
}
