package broker

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	allowall "github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"switchyard/auth"
	"switchyard/internal/mqttnet"
	"switchyard/internal/testutil"
)

// The MQTT 3.1.1 session rules the control plane and its boards rely on,
// checked the way an interoperability suite does (its topics, a persistent
// client with a fixed id, a second client publishing). They run against our
// broker as deployed (a named admin), our broker with no access rules,
// Mochi as it comes and, where installed, Mosquitto: the last two check the
// tests themselves.

// sessionTarget is a broker under test: where it listens, whom to log in
// as, and how to know it has finished with a client or a message.
type sessionTarget struct {
	url        string
	user, pass string
	done       *doneSignal
	// ackFirst: the broker acknowledges a publish before it hands the
	// message to the subscriptions (Mochi does; the done signal then
	// tells when it has).
	ackFirst bool
	// connected counts connected clients, when the broker drops a client
	// after telling the done signal (Mochi: see leave); nil otherwise.
	connected func() int64
}

// doneSignal tells a test that a broker has finished with a client or a
// message: a disconnect handled (key: the client id), a session expired
// ("expired/" + the client id), a message handed to every subscription
// ("published/" + topic + "/" + payload), a connect handled to the end,
// the kept session's messages resent ("established/" + the client id).
type doneSignal struct {
	mu      sync.Mutex // guards waiters
	waiters map[string][]chan struct{}
}

// expect returns a channel closed at the next saw(key). Call it before
// causing the event.
func (d *doneSignal) expect(key string) <-chan struct{} {
	ch := make(chan struct{})
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.waiters == nil {
		d.waiters = map[string][]chan struct{}{}
	}
	d.waiters[key] = append(d.waiters[key], ch)
	return ch
}

func (d *doneSignal) saw(key string) {
	d.mu.Lock()
	chs := d.waiters[key]
	delete(d.waiters, key)
	d.mu.Unlock()
	for _, ch := range chs {
		close(ch)
	}
}

// doneHook reports to a doneSignal once Mochi and the hooks added before
// it have handled a client's disconnect or expiry, or a publish. It never
// blocks.
type doneHook struct {
	mqtt.HookBase
	done *doneSignal
}

func (h *doneHook) ID() string { return "test-done" }

func (h *doneHook) Provides(b byte) bool {
	return b == mqtt.OnDisconnect || b == mqtt.OnClientExpired || b == mqtt.OnPublished || b == mqtt.OnSessionEstablished
}

// OnSessionEstablished runs after Mochi sent the CONNACK and resent the
// kept session's messages.
func (h *doneHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	h.done.saw("established/" + cl.ID)
}

func (h *doneHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) { h.done.saw(cl.ID) }

func (h *doneHook) OnClientExpired(cl *mqtt.Client) { h.done.saw("expired/" + cl.ID) }

func (h *doneHook) OnPublished(_ *mqtt.Client, pk packets.Packet) {
	h.done.saw("published/" + pk.TopicName + "/" + string(pk.Payload))
}

// watch adds a doneHook to b, after its own hooks.
func watch(t *testing.T, b *Broker) *doneSignal {
	t.Helper()
	d := new(doneSignal)
	if err := b.srv.AddHook(&doneHook{done: d}, nil); err != nil {
		t.Fatal(err)
	}
	return d
}

// as is our broker b, logged in as user, done watching it.
func as(b *Broker, done *doneSignal, user, pass string) sessionTarget {
	return sessionTarget{url: "tcp://" + b.Addr().String(), user: user, pass: pass, done: done, ackFirst: true, connected: b.Clients}
}

// switchyardTarget is our broker with users, logged in as the admin.
func switchyardTarget(t *testing.T) sessionTarget {
	b := authBroker(t, auth.AnonOff, Config{})
	return as(b, watch(t, b), "ada", "pwa")
}

// openTarget is our broker with no access rules.
func openTarget(t *testing.T) sessionTarget {
	b := startBroker(t, Config{})
	return as(b, watch(t, b), "", "")
}

// stockMochiTarget is Mochi as it comes, anyone allowed.
func stockMochiTarget(t *testing.T) sessionTarget {
	d := new(doneSignal)
	addr, srv := startStockMochi(t, &doneHook{done: d})
	connected := func() int64 { return atomic.LoadInt64(&srv.Info.ClientsConnected) }
	return sessionTarget{url: "tcp://" + addr, done: d, ackFirst: true, connected: connected}
}

// startStockMochi runs Mochi as it comes (default options, its own TCP
// listener on loopback, the allow-all hook), then hooks, until the test
// ends; it returns the address.
func startStockMochi(tb testing.TB, hooks ...mqtt.Hook) (string, *mqtt.Server) {
	tb.Helper()
	srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for _, h := range append([]mqtt.Hook{new(allowall.AllowHook)}, hooks...) {
		if err := srv.AddHook(h, nil); err != nil {
			tb.Fatal(err)
		}
	}
	ln := listeners.NewTCP(listeners.Config{ID: "stock", Address: "127.0.0.1:0"})
	if err := srv.AddListener(ln); err != nil { // binds: connections wait in the backlog until Serve accepts
		tb.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = mqttnet.CloseServer(srv, 10*time.Second) })
	return ln.Address(), srv
}

// mosquittoTarget runs Debian's mosquitto on a free loopback port, and
// learns from its log when it has finished with a client.
func mosquittoTarget(t *testing.T) sessionTarget {
	bin := testutil.NeedCommand(t, "mosquitto", "mosquitto")
	port := testutil.FreePort(t)
	conf := t.TempDir() + "/mosquitto.conf"
	if err := os.WriteFile(conf, fmt.Appendf(nil, "listener %s 127.0.0.1\nallow_anonymous true\nlog_dest stderr\nlog_type notice\nlog_type information\n", port), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	out, err := cmd.StderrPipe() // stderr: unbuffered, each line as it happens
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := new(doneSignal)
	running := make(chan struct{})
	ended := make(chan struct{})
	go func() { // ends when mosquitto exits (killed at cleanup) and its stderr closes
		defer close(ended)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasSuffix(line, " running") {
				close(running)
			}
			// "Client <id> disconnected." or "Client <id> closed its connection."
			if _, rest, ok := strings.Cut(line, ": Client "); ok {
				if id, what, ok := strings.Cut(rest, " "); ok && (strings.HasPrefix(what, "disconnected") || strings.HasPrefix(what, "closed its connection")) {
					d.saw(id)
				}
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-ended
		cmd.Wait()
	})
	select {
	case <-running:
	case <-ended:
		t.Fatal("mosquitto exited at start")
	case <-time.After(wait):
		t.Fatal("mosquitto did not start")
	}
	return sessionTarget{url: "tcp://127.0.0.1:" + port, done: d} // it queues a message for the subscriptions before acknowledging it
}

// sessionClient is one connection of an MQTT 3.1.1 client.
type sessionClient struct {
	paho.Client
	id      string
	present bool              // the CONNACK's session present flag
	msgs    chan paho.Message // every message delivered, subscribed in this connection or not
	lost    chan struct{}     // closed when the broker ends the connection
}

// dial connects as the target's user with client id id.
func (tg sessionTarget) dial(id, user, pass string, clean bool) (*sessionClient, error) {
	sc := &sessionClient{id: id, msgs: make(chan paho.Message, 64), lost: make(chan struct{})}
	o := paho.NewClientOptions().AddBroker(tg.url).SetClientID(id).SetUsername(user).SetPassword(pass).
		SetCleanSession(clean).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(wait).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { sc.msgs <- m }).
		SetConnectionLostHandler(func(paho.Client, error) { close(sc.lost) })
	sc.Client = paho.NewClient(o) // a fresh store: nothing of an earlier connection is resent by the client
	tok := sc.Connect()
	if !tok.WaitTimeout(wait) {
		return sc, fmt.Errorf("connect %s: timed out", id)
	}
	sc.present = tok.(*paho.ConnectToken).SessionPresent()
	return sc, tok.Error()
}

func (tg sessionTarget) connect(t *testing.T, id string, clean bool) *sessionClient {
	t.Helper()
	sc, err := tg.dial(id, tg.user, tg.pass, clean)
	t.Cleanup(func() { sc.Disconnect(0) })
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// leave disconnects c (DISCONNECT sent) and waits until the broker has
// finished with it.
func (tg sessionTarget) leave(t *testing.T, c *sessionClient) {
	t.Helper()
	done := tg.done.expect(c.id)
	var before int64
	if tg.connected != nil {
		before = tg.connected()
	}
	c.Disconnect(1000) // returns once DISCONNECT is written (1 s at most)
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatalf("the broker did not finish with %s", c.id)
	}
	if tg.connected == nil {
		return
	}
	// Mochi ends a clean session after the disconnect hooks have run, and
	// the client is counted gone only then; no event tells. A connection
	// with the same id in between can lose its place (Mochi removes the
	// client id, whichever connection now holds it).
	testutil.WaitFor(t, wait, testutil.Until(c.id+" counted gone", func() bool { return tg.connected() < before }))
}

func (c *sessionClient) subscribe(t *testing.T, filter string, qos byte) {
	t.Helper()
	tok := c.Subscribe(filter, qos, nil) // messages go to msgs
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("%s: subscribe %s: %v", c.id, filter, tok.Error())
	}
	if got := tok.(*paho.SubscribeToken).Result()[filter]; got != qos {
		t.Fatalf("%s: subscribe %s: granted %#x, want QoS %d", c.id, filter, got, qos)
	}
}

// publish publishes from c, and returns once the broker has handed the
// message to every subscription.
func (tg sessionTarget) publish(t *testing.T, c *sessionClient, topic string, qos byte, payload string) {
	t.Helper()
	var fannedOut <-chan struct{}
	if tg.ackFirst {
		fannedOut = tg.done.expect("published/" + topic + "/" + payload)
	}
	if tok := c.Publish(topic, qos, false, payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("%s: publish %s: %v", c.id, topic, tok.Error())
	}
	if fannedOut == nil {
		return
	}
	select {
	case <-fannedOut:
	case <-time.After(wait):
		t.Fatalf("%s: publish %s: not handed to the subscriptions", c.id, topic)
	}
}

// next returns the next message c receives.
func (c *sessionClient) next(t *testing.T, what string) paho.Message {
	t.Helper()
	return testutil.Recv(t, c.msgs, wait, what+" at client "+c.id)
}

// expectMarker publishes "marker" on topic from pub and fails unless it is
// the next message c gets: whatever c still had coming (why says what
// that would be) arrives before it.
func (tg sessionTarget) expectMarker(t *testing.T, c, pub *sessionClient, topic, why string) {
	t.Helper()
	tg.publish(t, pub, topic, 1, "marker")
	if m := c.next(t, "the marker"); string(m.Payload()) != "marker" {
		t.Errorf("%s: got %s %q", why, m.Topic(), m.Payload())
	}
}

func TestSessionRules(t *testing.T) {
	targets := []struct {
		name  string
		start func(*testing.T) sessionTarget
	}{
		{"switchyard admin", switchyardTarget},
		{"switchyard open", openTarget},
		{"stock mochi", stockMochiTarget},
		{"mosquitto", mosquittoTarget},
	}
	rules := []struct {
		name string
		run  func(*testing.T, sessionTarget)
	}{
		{"persistent session gets what came while away", persistentGetsQueued},
		{"clean session starts empty and leaves nothing", cleanStartsEmpty},
		{"session present flag", sessionPresentFlag},
		{"same client id takes over", takeover},
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			for _, r := range rules {
				t.Run(r.name, func(t *testing.T) { r.run(t, tg.start(t)) })
			}
		})
	}
}

// persistentGetsQueued: a client with clean session off keeps its
// subscriptions while away and gets the QoS 1 and 2 messages published
// meanwhile when it comes back [MQTT-3.1.2-4] [MQTT-3.1.2-5]; QoS 0 ones
// may or may not come.
func persistentGetsQueued(t *testing.T, tg sessionTarget) {
	a := tg.connect(t, "away", false)
	a.subscribe(t, "+/+", 2)
	tg.leave(t, a)

	b := tg.connect(t, "publisher", true)
	tg.publish(t, b, "TopicA/B", 0, "qos 0")
	tg.publish(t, b, "Topic/C", 1, "qos 1")
	tg.publish(t, b, "TopicA/C", 2, "qos 2")

	a = tg.connect(t, "away", false)
	if !a.present {
		t.Error("resumed persistent session: session present = false")
	}
	want := map[string]byte{"Topic/C": 1, "TopicA/C": 2}
	for len(want) > 0 {
		m := a.next(t, fmt.Sprintf("queued messages %v", want))
		q, ok := want[m.Topic()]
		switch {
		case ok && m.Qos() != q:
			t.Errorf("%s arrived at QoS %d, want %d", m.Topic(), m.Qos(), q)
		case !ok && m.Topic() != "TopicA/B":
			t.Errorf("unexpected message %s %q", m.Topic(), m.Payload())
		}
		delete(want, m.Topic())
	}
	// The subscription was kept: live messages arrive without subscribing again.
	tg.publish(t, b, "TopicA/B", 1, "live")
	for {
		if m := a.next(t, "a live message"); string(m.Payload()) == "live" {
			return
		}
	}
}

// cleanStartsEmpty: a clean session drops whatever the client's earlier
// session held, subscriptions and queued messages, and its own state ends
// with the connection [MQTT-3.1.2-6].
func cleanStartsEmpty(t *testing.T, tg sessionTarget) {
	a := tg.connect(t, "cleaner", false)
	a.subscribe(t, "TopicA/+", 1)
	tg.leave(t, a)
	b := tg.connect(t, "publisher", true)
	tg.publish(t, b, "TopicA/B", 1, "while away")

	a = tg.connect(t, "cleaner", true)
	if a.present {
		t.Error("clean session: session present = true")
	}
	a.subscribe(t, "TopicA/+", 1)
	tg.expectMarker(t, a, b, "TopicA/B", "clean session: a message from the earlier session")
	tg.leave(t, a)
	tg.publish(t, b, "TopicA/B", 1, "after the clean session")
	a = tg.connect(t, "cleaner", false)
	if a.present {
		t.Error("a clean session was kept after its connection ended")
	}
	// A marker on another subscription: whatever the old one still
	// delivered would come before it.
	a.subscribe(t, "Topic/C", 1)
	tg.publish(t, b, "TopicA/B", 1, "old subscription")
	tg.expectMarker(t, a, b, "Topic/C", "a clean session's subscription outlived it")
}

// sessionPresentFlag: CONNACK says a session was resumed only when clean
// session is off and the broker held one [MQTT-3.2.2-1] [MQTT-3.2.2-2]
// [MQTT-3.2.2-3].
func sessionPresentFlag(t *testing.T, tg sessionTarget) {
	for i, step := range []struct {
		clean, present bool
	}{
		{false, false}, // first connection: nothing to resume
		{false, true},
		{true, false}, // clean: present is always 0, and the kept session is dropped
		{false, false},
		{false, true},
	} {
		c := tg.connect(t, "flag", step.clean)
		if c.present != step.present {
			t.Errorf("connection %d (clean %v): session present = %v, want %v", i+1, step.clean, c.present, step.present)
		}
		tg.leave(t, c)
	}
}

// takeover: a second connection with the same client id ends the first
// [MQTT-3.1.4-2] and, clean session off, carries on its session.
func takeover(t *testing.T, tg sessionTarget) {
	first := tg.connect(t, "twin", false)
	first.subscribe(t, "TopicA/+", 1)
	second := tg.connect(t, "twin", false)
	select {
	case <-first.lost:
	case <-time.After(wait):
		t.Fatal("the first connection is still open after the takeover")
	}
	if !second.present {
		t.Error("takeover: session present = false")
	}
	b := tg.connect(t, "publisher", true)
	tg.publish(t, b, "TopicA/B", 1, "after takeover")
	if m := second.next(t, "a message on the taken-over subscription"); string(m.Payload()) != "after takeover" {
		t.Errorf("got %s %q", m.Topic(), m.Payload())
	}
}

// Our own session rules, beyond MQTT's.

// TestOnlyNamedUsersKeepSessions: a session of an anonymous client ends
// with its connection, even when it asked to keep it (clean session off);
// a named user's session is kept.
func TestOnlyNamedUsersKeepSessions(t *testing.T) {
	b := authBroker(t, auth.AnonLocal, Config{})
	done := watch(t, b)
	for _, tc := range []struct {
		name, user, pass string
		keep             bool
	}{
		{"anonymous", "", "", false},
		{"named operator", "otto", "pwo", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := as(b, done, tc.user, tc.pass)
			c := tg.connect(t, "keeper-"+tc.user, false)
			c.subscribe(t, "devices/#", 1)
			tg.leave(t, c)
			c = tg.connect(t, "keeper-"+tc.user, false)
			if c.present != tc.keep {
				t.Errorf("session present = %v after reconnecting, want %v", c.present, tc.keep)
			}
		})
	}
}

// TestKeptSessionOnlyForItsUser: while a named user's client is away with
// its session kept, no other login may use its client id, with clean
// session or without (it would read the messages queued for the session,
// or end it); the user gets the session back with what came meanwhile.
func TestKeptSessionOnlyForItsUser(t *testing.T) {
	b := authBroker(t, auth.AnonLocal, Config{})
	done := watch(t, b)
	tg := as(b, done, "otto", "pwo")
	a := tg.connect(t, "kept", false)
	a.subscribe(t, "devices/+/count", 1)
	tg.leave(t, a)
	for _, o := range []struct {
		name, user, pass string
		clean            bool
	}{
		{"admin resuming it", "ada", "pwa", false},
		{"admin with a clean session", "ada", "pwa", true},
		{"anonymous", "", "", true},
	} {
		c, err := tg.dial("kept", o.user, o.pass, o.clean)
		c.Disconnect(0)
		if err == nil || !strings.Contains(err.Error(), "identifier rejected") {
			t.Errorf("%s: got %v, want the client id rejected", o.name, err)
		}
	}
	pub := as(b, done, "ada", "pwa").connect(t, "pub", true)
	tg.publish(t, pub, "devices/b1/count", 1, "7")
	a = tg.connect(t, "kept", false)
	if !a.present {
		t.Error("the user's kept session is gone")
	}
	if m := a.next(t, "the message queued while away"); string(m.Payload()) != "7" {
		t.Errorf("got %s %q", m.Topic(), m.Payload())
	}
}

// TestExpiredSessionFreesItsID: when a kept session expires, its login is
// forgotten: another user may then take the client id, for a new session.
func TestExpiredSessionFreesItsID(t *testing.T) {
	b := authBroker(t, auth.AnonOff, Config{})
	done := watch(t, b)
	expired := done.expect("expired/short")
	connectV5(t, b.Addr().String(), "short", "otto", "pwo", 1) // kept for 1 s after the connection closes
	select {
	case <-expired:
	case <-time.After(2 * wait): // Mochi looks for expired sessions once a second
		t.Fatal("the session did not expire")
	}
	c := as(b, done, "ada", "pwa").connect(t, "short", false)
	if c.present {
		t.Error("the expired session was resumed")
	}
}

// TestLoginsEndWithSessions: the auth hook holds a client id's login
// exactly as long as Mochi holds its session, and no longer.
func TestLoginsEndWithSessions(t *testing.T) {
	srv := mqtt.New(&mqtt.Options{Logger: discard()})
	h := &authHook{az: testAuthority(t, auth.AnonLocal), srv: srv}
	if !h.Provides(mqtt.OnDisconnect) || !h.Provides(mqtt.OnClientExpired) {
		t.Fatal("the hook is not told when sessions end")
	}
	admit := func(id, user, pass string) *mqtt.Client {
		t.Helper()
		cl := srv.NewClient(nil, "t", id, false)
		cl.Net.Remote = "127.0.0.1:1"
		pk := packets.Packet{Connect: packets.ConnectParams{UsernameFlag: user != "", Username: []byte(user), PasswordFlag: pass != "", Password: []byte(pass)}}
		if code := h.admit(cl, pk); code != packets.CodeSuccess {
			t.Fatalf("%s as %q refused: %v", id, user, code)
		}
		srv.Clients.Add(cl) // as Mochi does once the hooks let it in
		return cl
	}
	held := func(step, id, want string) { // want: the user name, or "" for no login
		t.Helper()
		got := "<none>"
		if v, ok := h.logins.Load(id); ok {
			got = v.(*login).id.Name
		}
		if want == "" {
			want = "<none>"
		}
		if got != want {
			t.Errorf("%s: login of %s = %s, want %s", step, id, got, want)
		}
	}

	kept := admit("kept", "otto", "pwo")
	h.OnDisconnect(kept, nil, false)
	held("kept session, client away", "kept", "otto")
	h.OnClientExpired(kept)
	held("kept session expired", "kept", "")

	clean := admit("clean", "otto", "pwo")
	h.OnDisconnect(clean, nil, true)
	held("clean session ended", "clean", "")

	first := admit("twin", "otto", "pwo")
	second := admit("twin", "otto", "pwo") // takes first's session over
	h.OnDisconnect(first, nil, true)
	held("taken-over connection gone", "twin", "otto")
	if !h.OnConnectAuthenticate(second, packets.Packet{}) || h.OnConnectAuthenticate(first, packets.Packet{}) {
		t.Error("OnConnectAuthenticate does not let in exactly the latest admitted connection")
	}
	h.OnClientExpired(first) // a late report about the old one
	held("old connection expired", "twin", "otto")
	h.OnDisconnect(second, nil, true)
	held("session ended", "twin", "")

	anon := admit("anon", "", "")
	if !anon.Properties.Clean {
		t.Error("an anonymous session is not made clean")
	}
	h.OnDisconnect(anon, nil, true)
	held("anonymous session ended", "anon", "")
}
