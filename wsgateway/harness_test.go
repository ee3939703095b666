package wsgateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/packets"

	"switchyard/devices"
	"switchyard/internal/mqttnet"
	"switchyard/internal/testutil"
	"switchyard/wsgateway"
)

// The gateway's tests run it against a real Mochi broker on a free loopback
// port, with paho clients as boards and gorilla/websocket clients as
// browsers. (The switchyard broker package wraps the same Mochi; it is not
// imported here because wsgateway must not depend on it.)

const wait = 5 * time.Second // deadline for anything to arrive

// mochiBus is the gateway's Bus on a real Mochi broker.
type mochiBus struct{ srv *mqtt.Server }

func (b mochiBus) Publish(topic string, payload []byte, retain bool, qos byte) error {
	return b.srv.Publish(topic, payload, retain, qos)
}

func (b mochiBus) ClearRetained(filter string) (int, error) {
	n := 0
	for _, pk := range b.srv.Topics.Messages(filter) {
		if err := b.srv.Publish(pk.TopicName, nil, true, 0); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

type harness struct {
	t      *testing.T
	gw     *wsgateway.Gateway
	http   *httptest.Server
	mqtt   string // tcp://127.0.0.1:port
	topics devices.Topics
}

func newHarness(t *testing.T, cfg wsgateway.Config) *harness {
	t.Helper()
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumMessageExpiryInterval = 0
	caps.MaximumClientWritesPending = 1024
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Capabilities: caps, SysTopicResendInterval: 1 << 30,
		Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(mqttnet.NewTCP("t", ln, 10*time.Second, nil)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	if cfg.Topics.Prefix() == "" {
		cfg.Topics = devices.MustTopics("devices")
	}
	gw, err := wsgateway.New(cfg, mochiBus{srv})
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Subscribe(cfg.Topics.BoardFilter(), 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		gw.Ingest(pk.TopicName, pk.Payload, time.Unix(pk.Created, 0))
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(gw.Handler())
	t.Cleanup(func() {
		gw.Close()
		hs.Close()
		srv.Close()
	})
	return &harness{t: t, gw: gw, http: hs, mqtt: "tcp://" + ln.Addr().String(), topics: cfg.Topics}
}

var clientSeq atomic.Int64

// mqttClient connects a paho client; onConnect, when set, runs on every
// connect before Connect returns.
func (h *harness) mqttClient(id string, will *devices.Topics) paho.Client {
	h.t.Helper()
	o := paho.NewClientOptions().AddBroker(h.mqtt).
		SetClientID(fmt.Sprintf("%s-%d", id, clientSeq.Add(1))).
		SetAutoReconnect(false).SetConnectTimeout(wait)
	if will != nil {
		o.SetWill(will.Status(id), devices.Offline, 1, true)
	}
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		h.t.Fatalf("mqtt connect %s: %v", id, tok.Error())
	}
	h.t.Cleanup(func() { c.Disconnect(0) })
	return c
}

// board is a paho client playing a board, driven by the test.
type board struct {
	h  *harness
	id string
	c  paho.Client
}

func (h *harness) board(id string) *board {
	return &board{h: h, id: id, c: h.mqttClient(id, &h.topics)}
}

func (b *board) pub(k devices.Kind, payload string, retain bool) {
	b.h.t.Helper()
	tok := b.c.Publish(b.h.topics.Topic(b.id, k), 1, retain, payload)
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		b.h.t.Fatalf("publish %s %v: %v", b.id, k, tok.Error())
	}
}

// online publishes what a board publishes on connect.
func (b *board) online(led string) {
	b.pub(devices.KindStatus, "online", true)
	b.pub(devices.KindInfo, fmt.Sprintf(`{"id":%q,"firmware":"test","board":"paho"}`, b.id), true)
	b.pub(devices.KindLED, led, true)
}

// onlineBoard connects board id, publishes what a board publishes on
// connect (its led at led) and waits until the gateway has all of it:
// online, and its led (published last, so the info is in too). A browser
// that connects then gets it all in its snapshot, nothing of it live.
func (h *harness) onlineBoard(id, led string) *board {
	h.t.Helper()
	b := h.board(id)
	b.online(led)
	h.waitDevice(id, func(d apiDevice) bool { return d.Online && d.LED != nil && len(d.Info) > 0 && string(d.Info) != "null" })
	return b
}

// dial opens a bare WebSocket connection to url with d (for a browser whose
// socket the test shapes or reads itself), closed at the end of the test.
func (h *harness) dial(d *websocket.Dialer, url string) *websocket.Conn {
	h.t.Helper()
	c, _, err := d.Dial(url, nil)
	if err != nil {
		h.t.Fatalf("dial %s: %v", url, err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

// subscribe delivers messages on filter to the returned channel.
func (h *harness) subscribe(filter string) <-chan paho.Message {
	h.t.Helper()
	ch := make(chan paho.Message, 1024)
	c := h.mqttClient("observer", nil)
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) { ch <- m })
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		h.t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return ch
}

// recvMQTT returns the next message on ch, a channel from subscribe.
func recvMQTT(t *testing.T, ch <-chan paho.Message, what string) paho.Message {
	t.Helper()
	return testutil.Recv(t, ch, wait, what)
}

// event is a WebSocket event as a browser decodes it.
type event struct {
	Device string          `json:"device"`
	Label  string          `json:"label"`
	Value  json.RawMessage `json:"value"`
	// Event and ID are set on the events of other packages (Broadcast):
	// {"event":"rollout","id":…}.
	Event string `json:"event"`
	ID    string `json:"id"`
}

func (e event) String() string {
	if e.Event != "" {
		return fmt.Sprintf("event %s %s", e.Event, e.ID)
	}
	s := fmt.Sprintf("%s/%s=%s", e.Device, e.Label, e.Value)
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

// browser is a gorilla/websocket client playing a browser.
type browser struct {
	t       *testing.T
	conn    *websocket.Conn
	pending []event
	frames  int
	arrays  int
	// lastFrame is the last frame read, as label=value strings (a command
	// event's value is its state).
	lastFrame []string
}

func (h *harness) wsURL(path string) string {
	return "ws" + strings.TrimPrefix(h.http.URL, "http") + path
}

func (h *harness) browser(path string, hdr http.Header) *browser {
	h.t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(h.wsURL(path), hdr)
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		h.t.Fatalf("dial %s: %v (HTTP %d)", path, err, code)
	}
	h.t.Cleanup(func() { conn.Close() })
	return &browser{t: h.t, conn: conn}
}

// next returns the next event, reading a frame (an object or an array) when
// none is pending.
func (b *browser) next() (event, error) {
	for len(b.pending) == 0 {
		if err := b.conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
			return event{}, err
		}
		_, data, err := b.conn.ReadMessage()
		if err != nil {
			return event{}, err
		}
		b.frames++
		if len(data) > 0 && data[0] == '[' {
			b.arrays++
			if err := json.Unmarshal(data, &b.pending); err != nil {
				return event{}, fmt.Errorf("frame %s: %w", data, err)
			}
		} else {
			var e event
			if err := json.Unmarshal(data, &e); err != nil {
				return event{}, fmt.Errorf("frame %s: %w", data, err)
			}
			b.pending = append(b.pending, e)
		}
		b.lastFrame = frameStrings(b.pending) // the loop runs while pending is empty
	}
	e := b.pending[0]
	b.pending = b.pending[1:]
	return e, nil
}

// readUntilEnd reads c, discarding what comes, until the connection ends,
// and returns why: a *websocket.CloseError when the server sent a close
// frame, a timeout when the connection is still open after wait.
func readUntilEnd(c *websocket.Conn) error {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return err
		}
	}
}

// waitFor reads events until one matches device, label and value (value
// "" matches any) and returns it.
func (b *browser) waitFor(device, label, value string) event {
	b.t.Helper()
	var seen []string
	for {
		e, err := b.next()
		if err != nil {
			b.t.Fatalf("waiting for %s/%s=%s: %v (seen %v)", device, label, value, err, seen)
		}
		if e.Device == device && e.Label == label && (value == "" || string(e.Value) == value) {
			return e
		}
		if len(seen) < 20 {
			seen = append(seen, e.String())
		}
	}
}

func (b *browser) send(msg string) {
	b.t.Helper()
	if err := b.conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		b.t.Fatalf("send %s: %v", msg, err)
	}
}

// do sends a request with no credentials and decodes a JSON answer into
// v (when not nil).
func (h *harness) do(method, path, body string, v any) int {
	h.t.Helper()
	return h.doWith(method, path, body, nil, v)
}

// doWith is do with the headers of hdr (credentials, say).
func (h *harness) doWith(method, path, body string, hdr http.Header, v any) int {
	h.t.Helper()
	req, err := http.NewRequest(method, h.http.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if v != nil && len(data) > 0 {
		if err := json.Unmarshal(data, v); err != nil {
			h.t.Fatalf("%s %s: %s: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

// apiDevice is a device as GET /api/devices answers.
type apiDevice struct {
	ID       string          `json:"id"`
	Name     string          `json:"name"`
	Online   bool            `json:"online"`
	LED      *string         `json:"led"`
	Count    *int64          `json:"count"`
	Info     json.RawMessage `json:"info"`
	LastSeen *string         `json:"last_seen"`
	Tags     []string        `json:"tags"`
	Firmware *string         `json:"firmware"`
	New      bool            `json:"new"`
}

// waitFor polls cond (there is no event for it) until it holds.
func (h *harness) waitFor(cond func() bool) {
	h.t.Helper()
	testutil.WaitFor(h.t, wait, testutil.Until("the condition", cond))
}

// waitDevice polls the API (no event exists for "the gateway has applied
// it") until cond holds for device id.
func (h *harness) waitDevice(id string, cond func(apiDevice) bool) apiDevice {
	h.t.Helper()
	var d apiDevice
	testutil.WaitFor(h.t, wait, func() error {
		if code := h.do("GET", "/api/devices/"+id, "", &d); code != http.StatusOK || !cond(d) {
			return fmt.Errorf("device %s: status %d, %+v", id, code, d)
		}
		return nil
	})
	return d
}

func frameStrings(evs []event) []string {
	var out []string
	for _, e := range evs {
		v := string(e.Value)
		if e.Label == "command" {
			var c struct{ State string }
			if err := json.Unmarshal(e.Value, &c); err == nil {
				v = c.State
			}
		}
		out = append(out, e.Label+"="+v)
	}
	return out
}
