package board_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/board"
	"switchyard/internal/testutil"
)

// The tests here drive a Board through fakes in lock step: every session
// call and every timer the board makes is handed to the test over an
// unbuffered channel, so the test always knows what the board is doing.

const waitFor = 5 * time.Second

// fakeSession records each call as a line such as
// "publish devices/b1/led ON q1 r" and hands it to the test.
type fakeSession struct {
	calls chan string
	name  string // prefixes every line as "name: ", if set

	// connectLeft is the time the context of the last Connect had left.
	connectLeft time.Duration

	mu            sync.Mutex
	opts          board.ConnectOptions
	failConnect   int // fail this many Connect calls
	failPublish   string
	failSubscribe string // refuse the next subscription to this filter
}

func newFakeSession() *fakeSession { return &fakeSession{calls: make(chan string)} }

func (s *fakeSession) record(ctx context.Context, line string) error {
	if s.name != "" {
		line = s.name + ": " + line
	}
	select {
	case s.calls <- line:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// scripted hands line to the test and then returns the error script
// chose, or record's. script runs under mu, before the hand-over, so that
// a test changing the script after seeing this call affects only later
// ones.
func (s *fakeSession) scripted(ctx context.Context, line string, script func() error) error {
	s.mu.Lock()
	scriptErr := script()
	s.mu.Unlock()
	if err := s.record(ctx, line); err != nil {
		return err
	}
	return scriptErr
}

func (s *fakeSession) Connect(ctx context.Context, o board.ConnectOptions) error {
	w := o.Will
	line := fmt.Sprintf("connect %s keepalive=%s will=%s %s q%d r=%t", o.ClientID, o.KeepAlive, w.Topic, w.Payload, w.QoS, w.Retained)
	return s.scripted(ctx, line, func() error {
		if dl, ok := ctx.Deadline(); ok {
			s.connectLeft = time.Until(dl)
		}
		if s.failConnect > 0 {
			s.failConnect--
			return errors.New("connection refused")
		}
		s.opts = o
		return nil
	})
}

func (s *fakeSession) Subscribe(ctx context.Context, filter string, qos byte) error {
	return s.scripted(ctx, fmt.Sprintf("subscribe %s q%d", filter, qos), func() error {
		if s.failSubscribe != "" && s.failSubscribe == filter {
			s.failSubscribe = ""
			return errors.New("refused by the broker (code 0x80)")
		}
		return nil
	})
}

func (s *fakeSession) Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	line := fmt.Sprintf("publish %s %s q%d", topic, payload, qos)
	if retain {
		line += " r"
	}
	return s.scripted(ctx, line, func() error {
		if s.failPublish != "" && strings.HasPrefix(line, s.failPublish) {
			s.failPublish = ""
			return errors.New("publish timed out")
		}
		return nil
	})
}

func (s *fakeSession) Disconnect(ctx context.Context) error { return s.record(ctx, "disconnect") }

// deliver hands m to the board as an inbound message of the current
// connection.
func (s *fakeSession) deliver(m board.Message) {
	s.mu.Lock()
	on := s.opts.OnMessage
	s.mu.Unlock()
	on(m)
}

// lose reports the current connection as lost.
func (s *fakeSession) lose() {
	s.mu.Lock()
	lost := s.opts.OnLost
	s.mu.Unlock()
	lost(errors.New("broker went away"))
}

func (s *fakeSession) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-s.calls:
			if got != w {
				t.Fatalf("session call: got %q, want %q", got, w)
			}
		case <-time.After(waitFor):
			t.Fatalf("session call: got nothing within %s, want %q", waitFor, w)
		}
	}
}

// fakeClock hands every timer the board makes to the test, which fires it.
type fakeClock struct {
	tick   chan time.Time
	timers chan *fakeTimer
}

type fakeTimer struct {
	d time.Duration
	c chan time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }
func (t *fakeTimer) Stop()               {}

func newFakeClock() *fakeClock {
	return &fakeClock{tick: make(chan time.Time), timers: make(chan *fakeTimer)}
}

func (c *fakeClock) NewTicker(time.Duration) board.Timer { return &fakeTimer{c: c.tick} }

func (c *fakeClock) NewTimer(d time.Duration) board.Timer {
	t := &fakeTimer{d: d, c: make(chan time.Time)}
	c.timers <- t
	return t
}

func (c *fakeClock) fireTick(t *testing.T) {
	t.Helper()
	select {
	case c.tick <- time.Time{}:
	case <-time.After(waitFor):
		t.Fatal("board did not take a tick")
	}
}

// nextTimer returns the next timer the board makes and checks its duration.
func (c *fakeClock) nextTimer(t *testing.T, want time.Duration) *fakeTimer {
	t.Helper()
	select {
	case tm := <-c.timers:
		if tm.d != want {
			t.Fatalf("timer: got %s, want %s", tm.d, want)
		}
		return tm
	case <-time.After(waitFor):
		t.Fatalf("board made no timer within %s, want one of %s", waitFor, want)
		return nil
	}
}

type rig struct {
	sess *fakeSession
	clk  *fakeClock
	led  *board.MemoryLED
	stop func() error // cancels Run and returns its result
}

// maxRand makes the jittered backoff deterministic: always the cap, less 1.
func maxRand(n int64) int64 { return n - 1 }

func startBoard(t *testing.T, sess *fakeSession) *rig {
	t.Helper()
	return startBoardWith(t, sess, board.Config{Session: sess})
}

// startBoardWith starts board b1 on the session or brokers of cfg; sess
// is the fake whose calls the rig's cleanup answers (the brokers' fakes
// share its calls channel).
func startBoardWith(t *testing.T, sess *fakeSession, cfg board.Config) *rig {
	t.Helper()
	r := &rig{sess: sess, clk: newFakeClock(), led: new(board.MemoryLED)}
	cfg.ID, cfg.Model, cfg.LED, cfg.Clock = "b1", "test", r.led, r.clk
	cfg.Rand, cfg.MinBackoff, cfg.MaxBackoff = maxRand, 100*time.Millisecond, time.Second
	b, err := board.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	run := testutil.Go(b.Run)
	r.stop = func() error { return run.Stop(waitFor) }
	t.Cleanup(func() {
		run.Cancel()
		deadline := time.After(waitFor)
		for { // answer whatever the board still says while it stops
			select {
			case <-sess.calls:
			case <-r.clk.timers:
			case <-run.Done():
				return
			case <-deadline:
				t.Error("Run did not return")
				return
			}
		}
	})
	return r
}

const (
	connectB1 = "connect b1 keepalive=10s will=devices/b1/status offline q1 r=true"
	infoB1    = `{"id":"b1","firmware":"devicefw","board":"test","interval_ms":1000}`
)

func resync(led string) []string { return resyncWith(infoB1, led) }

func TestResyncThenCount(t *testing.T) {
	r := startBoard(t, newFakeSession())
	r.sess.expect(t, resync("OFF")...)
	for i := range 3 {
		r.clk.fireTick(t)
		r.sess.expect(t, fmt.Sprintf("publish devices/b1/count %d q0", i))
	}
}

func TestCommands(t *testing.T) {
	const set = "devices/b1/led/set"
	tests := []struct {
		name    string
		msg     board.Message
		want    string // the led publish, "" for none
		wantLED bool
	}{
		{"on", board.Message{Topic: set, Payload: []byte("on")}, "ON", true},
		{"ON again is confirmed", board.Message{Topic: set, Payload: []byte("ON")}, "ON", true},
		{"Toggle", board.Message{Topic: set, Payload: []byte("Toggle")}, "OFF", false},
		{"toggle with spaces", board.Message{Topic: set, Payload: []byte(" tOgGlE\n")}, "ON", true},
		{"garbage", board.Message{Topic: set, Payload: []byte("blink")}, "", true},
		{"empty", board.Message{Topic: set}, "", true},
		{"retained command", board.Message{Topic: set, Payload: []byte("OFF"), Retained: true}, "", true},
		{"other topic", board.Message{Topic: "devices/b2/led/set", Payload: []byte("OFF")}, "", true},
		{"Off", board.Message{Topic: set, Payload: []byte("Off")}, "OFF", false},
		{"OFF again is confirmed", board.Message{Topic: set, Payload: []byte("OFF")}, "OFF", false},
	}
	r := startBoard(t, newFakeSession())
	r.sess.expect(t, resync("OFF")...)
	for i, tt := range tests {
		r.sess.deliver(tt.msg)
		if tt.want != "" {
			r.sess.expect(t, "publish devices/b1/led "+tt.want+" q1 r")
		}
		// A tick proves the board has handled the message and published
		// nothing else meanwhile.
		r.clk.fireTick(t)
		r.sess.expect(t, fmt.Sprintf("publish devices/b1/count %d q0", i))
		if got := r.led.On(); got != tt.wantLED {
			t.Errorf("%s: LED on: got %t, want %t", tt.name, got, tt.wantLED)
		}
	}
}

func TestReconnect(t *testing.T) {
	s := newFakeSession()
	r := startBoard(t, s)
	r.sess.expect(t, resync("OFF")...)
	r.sess.deliver(board.Message{Topic: "devices/b1/led/set", Payload: []byte("TOGGLE")})
	r.sess.expect(t, "publish devices/b1/led ON q1 r")
	r.clk.fireTick(t)
	r.sess.expect(t, "publish devices/b1/count 0 q0")

	s.mu.Lock()
	s.failConnect = 5
	s.mu.Unlock()
	r.sess.lose()
	r.sess.expect(t, "disconnect") // a lost connection is released without a last word
	// Backoff caps double from 100ms up to 1s; maxRand takes cap-1.
	for _, limit := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		tm := r.clk.nextTimer(t, limit*time.Millisecond-1)
		r.clk.fireTick(t) // skipped while offline
		tm.c <- time.Time{}
		r.sess.expect(t, connectB1)
	}
	// The sixth attempt succeeds: resync with the LED as it was, and the
	// count goes on where it was.
	r.sess.expect(t, resync("ON")[1:]...)
	r.clk.fireTick(t)
	r.sess.expect(t, "publish devices/b1/count 1 q0")

	// A failed publish on a live connection says offline before retrying.
	s.mu.Lock()
	s.failPublish = "publish devices/b1/count"
	s.mu.Unlock()
	r.clk.fireTick(t)
	r.sess.expect(t, "publish devices/b1/count 2 q0", "publish devices/b1/status offline q1 r", "disconnect")
	r.clk.nextTimer(t, 100*time.Millisecond-1).c <- time.Time{}
	r.sess.expect(t, resync("ON")...)
}

func TestShutdown(t *testing.T) {
	r := startBoard(t, newFakeSession())
	r.sess.expect(t, resync("OFF")...)
	done := make(chan error, 1)
	go func() { done <- r.stop() }() // ends once Run has returned
	r.sess.expect(t, "publish devices/b1/status offline q1 r", "disconnect")
	if err := testutil.Recv(t, done, waitFor, "Run to return"); err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
}

func TestShutdownWhileOffline(t *testing.T) {
	s := newFakeSession()
	s.failConnect = 1
	r := startBoard(t, s)
	r.sess.expect(t, connectB1)
	r.clk.nextTimer(t, 100*time.Millisecond-1)
	// Offline, so nothing to say: Run returns without a session call.
	if err := r.stop(); err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
}

func TestNewRejects(t *testing.T) {
	sess := newFakeSession()
	tests := []struct {
		name string
		cfg  board.Config
		want string
	}{
		{"bad id", board.Config{ID: "a/b", Session: sess}, "invalid device id"},
		{"empty id", board.Config{Session: sess}, "invalid device id"},
		{"bad prefix", board.Config{ID: "a", Prefix: "x/#", Session: sess}, "invalid topic prefix"},
		{"no session", board.Config{ID: "a"}, "no MQTT session"},
		{"session and brokers", board.Config{ID: "a", Session: sess, Brokers: []board.Broker{{Session: sess}}}, "both Session and Brokers"},
		{"broker without session", board.Config{ID: "a", Brokers: []board.Broker{{URL: "tcp://x:1"}}}, "broker 1 (tcp://x:1) has no MQTT session"},
		{"negative interval", board.Config{ID: "a", Session: sess, Interval: -time.Second}, "negative"},
	}
	for _, tt := range tests {
		_, err := board.New(tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

// named returns lines as the fake session name says them.
func named(name string, lines ...string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = name + ": " + l
	}
	return out
}

func TestFailover(t *testing.T) {
	calls := make(chan string)
	a, b, c := &fakeSession{calls: calls, name: "a"}, &fakeSession{calls: calls, name: "b"}, &fakeSession{calls: calls, name: "c"}
	setFail := func(s *fakeSession, n int) {
		s.mu.Lock()
		s.failConnect = n
		s.mu.Unlock()
	}
	r := startBoardWith(t, a, board.Config{Brokers: []board.Broker{
		{URL: "tcp://a:1883", Session: a}, {URL: "tcp://b:1883", Session: b}, {URL: "tcp://c:1883", Session: c},
	}})
	// The first connect goes to the first broker.
	r.sess.expect(t, named("a", resync("OFF")...)...)
	a.mu.Lock()
	left := a.connectLeft
	a.mu.Unlock()
	if left <= 0 || left > board.FailoverConnectTimeout {
		t.Errorf("connect timeout with several brokers: got %s left, want at most %s", left, board.FailoverConnectTimeout)
	}

	// Lost: b and c at once (no timer); both fail, and with a (lost) that
	// is a whole round: back off, then go on with a, wrapping around.
	setFail(b, 1)
	setFail(c, 1)
	a.lose()
	r.sess.expect(t, "a: disconnect", "b: "+connectB1, "c: "+connectB1)
	// A second whole round (a, b, c failing) backs off by the next power.
	setFail(a, 1)
	setFail(b, 1)
	setFail(c, 1)
	r.clk.nextTimer(t, 100*time.Millisecond-1).c <- time.Time{}
	r.sess.expect(t, "a: "+connectB1, "b: "+connectB1, "c: "+connectB1)
	r.clk.nextTimer(t, 200*time.Millisecond-1).c <- time.Time{}
	r.sess.expect(t, named("a", resync("OFF")...)...)

	// Online again: each loss moves to the next broker at once, wrapping
	// around, and the count goes on.
	sessions := []*fakeSession{a, b, c}
	for i, cur := range sessions {
		next := sessions[(i+1)%len(sessions)]
		r.clk.fireTick(t)
		r.sess.expect(t, fmt.Sprintf("%s: publish devices/b1/count %d q0", cur.name, i))
		cur.lose()
		r.sess.expect(t, cur.name+": disconnect")
		r.sess.expect(t, named(next.name, resync("OFF")...)...)
	}
	// A failed connect after being online is not yet a whole round.
	setFail(b, 1)
	a.lose()
	r.sess.expect(t, "a: disconnect", "b: "+connectB1)
	r.sess.expect(t, named("c", resync("OFF")...)...)
}

func TestOwnStatus(t *testing.T) {
	const status = "devices/b1/status"
	tests := []struct {
		name string
		msg  board.Message
		want bool // status online published again
	}{
		{"late will", board.Message{Topic: status, Payload: []byte("offline"), QoS: 1}, true},
		{"own online", board.Message{Topic: status, Payload: []byte("online"), QoS: 1}, false},
		{"retained copy at subscribe", board.Message{Topic: status, Payload: []byte("offline"), Retained: true}, false},
		{"cleared", board.Message{Topic: status}, false},
		{"garbage", board.Message{Topic: status, Payload: []byte("OFFLINE ")}, false},
		{"another board", board.Message{Topic: "devices/b2/status", Payload: []byte("offline")}, false},
		{"late will again", board.Message{Topic: status, Payload: []byte("offline")}, true},
	}
	r := startBoard(t, newFakeSession())
	r.sess.expect(t, resync("OFF")...)
	for i, tt := range tests {
		r.sess.deliver(tt.msg)
		if tt.want {
			r.sess.expect(t, "publish devices/b1/status online q1 r")
		}
		// A tick proves the board has handled the message and published
		// nothing else meanwhile.
		r.clk.fireTick(t)
		r.sess.expect(t, fmt.Sprintf("publish devices/b1/count %d q0", i))
	}
}

// TestOwnStatusWhileBusy: a late will that comes while the board is busy
// (here waiting for a publish, as when a broker is slow to acknowledge)
// behind more commands than it queues is still answered with online: the
// commands past the queue are dropped, its own status never is.
func TestOwnStatusWhileBusy(t *testing.T) {
	r := startBoard(t, newFakeSession())
	r.sess.expect(t, resync("OFF")...)
	r.clk.fireTick(t) // the board publishes count 0 and waits for the session
	for range 12 {
		r.sess.deliver(board.Message{Topic: "devices/b1/led/set", Payload: []byte("TOGGLE")})
	}
	r.sess.deliver(board.Message{Topic: "devices/b1/status", Payload: []byte("offline"), QoS: 1})
	r.sess.expect(t, "publish devices/b1/count 0 q0")
	var seen []string
	for len(seen) < 20 {
		select {
		case got := <-r.sess.calls:
			if got == "publish devices/b1/status online q1 r" {
				return
			}
			seen = append(seen, got)
		case <-time.After(waitFor):
			t.Fatalf("no status online within %s; the board said %q", waitFor, seen)
		}
	}
	t.Fatalf("no status online; the board said %q", seen)
}

// TestStatusRecheck: a board with several brokers subscribes its own
// status again five ticks after a connect, and answers that
// subscription's retained offline (a Will the cluster stored after the
// board's online) with online, then looks again five ticks later, until a
// look finds it online; a retained offline at any other time is the
// broker's copy from before the connect, and ignored.
func TestStatusRecheck(t *testing.T) {
	calls := make(chan string)
	a, b := &fakeSession{calls: calls, name: "a"}, &fakeSession{calls: calls, name: "b"}
	r := startBoardWith(t, a, board.Config{Brokers: []board.Broker{
		{URL: "tcp://a:1883", Session: a}, {URL: "tcp://b:1883", Session: b},
	}})
	r.sess.expect(t, named("a", resync("OFF")...)...)
	retainedOffline := board.Message{Topic: "devices/b1/status", Payload: []byte("offline"), Retained: true}
	a.deliver(retainedOffline) // before the recheck: ignored
	for i := range 5 {
		r.clk.fireTick(t)
		r.sess.expect(t, fmt.Sprintf("a: publish devices/b1/count %d q0", i))
	}
	r.sess.expect(t, "a: subscribe devices/b1/status q0")
	a.deliver(retainedOffline)
	r.sess.expect(t, "a: publish devices/b1/status online q1 r")
	a.deliver(retainedOffline) // the recheck's copy was answered once
	// Having answered, it looks again five ticks later; a look that finds
	// it online is the last.
	for i := 5; i < 10; i++ {
		r.clk.fireTick(t)
		r.sess.expect(t, fmt.Sprintf("a: publish devices/b1/count %d q0", i))
	}
	r.sess.expect(t, "a: subscribe devices/b1/status q0")
	a.deliver(board.Message{Topic: "devices/b1/status", Payload: []byte("online"), Retained: true})
	for i := 10; i < 16; i++ {
		r.clk.fireTick(t)
		r.sess.expect(t, fmt.Sprintf("a: publish devices/b1/count %d q0", i))
	}
}

// TestSubscriptionRefused: a broker that refuses led/set or the board's own
// status (NATS does while it elects leaders after a node died) fails the
// connect: the board disconnects, without an offline it never needed (it
// had not said online on that connection), and tries the next broker at
// once, or, with one broker, again after its backoff. A refused
// update/set only leaves the board without update jobs.
func TestSubscriptionRefused(t *testing.T) {
	for _, filter := range []string{"devices/b1/led/set", "devices/b1/status"} {
		t.Run(filter, func(t *testing.T) {
			calls := make(chan string)
			a, b := &fakeSession{calls: calls, name: "a"}, &fakeSession{calls: calls, name: "b"}
			a.failSubscribe = filter
			r := startBoardWith(t, a, board.Config{Brokers: []board.Broker{
				{URL: "tcp://a:1883", Session: a}, {URL: "tcp://b:1883", Session: b},
			}})
			var upTo []string
			for _, l := range resync("OFF") {
				upTo = append(upTo, l)
				if strings.HasPrefix(l, "subscribe "+filter+" ") {
					break
				}
			}
			r.sess.expect(t, named("a", upTo...)...)
			r.sess.expect(t, "a: disconnect")
			r.sess.expect(t, named("b", resync("OFF")...)...)
			r.clk.fireTick(t)
			r.sess.expect(t, "b: publish devices/b1/count 0 q0")
		})
	}
	t.Run("one broker", func(t *testing.T) {
		s := newFakeSession()
		s.failSubscribe = "devices/b1/status"
		r := startBoard(t, s)
		r.sess.expect(t, resync("OFF")[:4]...)
		r.sess.expect(t, "disconnect")
		r.clk.nextTimer(t, 100*time.Millisecond-1).c <- time.Time{}
		r.sess.expect(t, resync("OFF")...)
	})
	// Once it has said online on the connection, a failed resync says
	// offline before it disconnects.
	t.Run("after online", func(t *testing.T) {
		s := newFakeSession()
		s.failPublish = "publish devices/b1/info"
		r := startBoard(t, s)
		r.sess.expect(t, resync("OFF")[:6]...)
		r.sess.expect(t, "publish devices/b1/status offline q1 r", "disconnect")
		r.clk.nextTimer(t, 100*time.Millisecond-1).c <- time.Time{}
		r.sess.expect(t, resync("OFF")...)
	})
	t.Run("update/set", func(t *testing.T) {
		s := newFakeSession()
		s.failSubscribe = "devices/b1/update/set"
		r := startBoard(t, s)
		r.sess.expect(t, resync("OFF")...)
		r.clk.fireTick(t)
		r.sess.expect(t, "publish devices/b1/count 0 q0")
	})
}
