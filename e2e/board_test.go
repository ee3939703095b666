package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"switchyard/internal/pahostore"
	"switchyard/internal/testutil"
)

// board simulates a board per the wire contract: on every (re)connect it
// publishes status online, its led and its info (retained, QoS 1) with a
// retained Last Will "offline"; it publishes its count every interval (or
// when the test calls tick) and answers led/set by applying it and
// publishing led. It is written here, not taken from board/, so that these
// tests check the control plane and the page against the contract alone.
type board struct {
	id       string
	info     map[string]any // published on every connect; mu guards it once the board runs
	prefix   string
	interval time.Duration
	client   mqtt.Client

	mu       sync.Mutex
	led      bool
	count    int64
	conn     net.Conn      // the current connection, closed by kill
	dead     bool          // killed: no more connections
	connects int           // successful connects so far
	changed  chan struct{} // closed and replaced on every connect
	stopTick chan struct{}
	tickDone chan struct{}
	commands chan string // every valid led/set payload, when there is room
	deaf     bool        // ignores every command
}

// boardOptions configures a simulated board.
type boardOptions struct {
	id       string
	name     string        // info.name; empty: none
	interval time.Duration // count period; 0: only tick publishes
	led      bool          // the LED at boot
	count    int64         // the count so far (a board up for a while)
	hardware string        // info.board; empty: "simulator"
	firmware string        // info.firmware; empty: "e2e-sim"
	ip       string        // info.ip; empty: none
	deaf     bool          // ignores every command (a broken board)
	username string        // MQTT credentials; empty: anonymous
	password string
}

// startBoard connects a board to the broker at addr and waits until its
// retained state is published. It is disconnected (cleanly) at the end of
// the test unless it was killed.
func startBoard(t testing.TB, addr string, opt boardOptions) *board {
	t.Helper()
	b := newBoard(addr, opt)
	t.Cleanup(b.close)
	if err := b.waitConnects(1, wait); err != nil {
		t.Fatalf("board %s: %v", b.id, err)
	}
	return b
}

// newBoard starts connecting a board to the broker at addr.
func newBoard(addr string, opt boardOptions) *board {
	info := map[string]any{"id": opt.id, "firmware": "e2e-sim", "board": "simulator", "interval_ms": opt.interval.Milliseconds()}
	for k, v := range map[string]string{"name": opt.name, "board": opt.hardware, "firmware": opt.firmware, "ip": opt.ip} {
		if v != "" {
			info[k] = v
		}
	}
	if opt.interval == 0 {
		info["interval_ms"] = 1000 // a real board's period; this one counts when told
	}
	b := &board{
		id:       opt.id,
		info:     info,
		prefix:   "devices",
		interval: opt.interval,
		led:      opt.led,
		count:    opt.count,
		changed:  make(chan struct{}),
		stopTick: make(chan struct{}),
		tickDone: make(chan struct{}),
		commands: make(chan string, 64),
		deaf:     opt.deaf,
	}
	o := mqtt.NewClientOptions().
		AddBroker("tcp://"+addr).
		SetClientID(b.id).
		SetCleanSession(true).
		SetKeepAlive(30*time.Second).
		SetConnectTimeout(5*time.Second).
		SetWill(b.topic("status"), "offline", 1, true).
		SetAutoReconnect(true).
		SetStore(pahostore.Nop{}). // paho's resume races on reconnect (see pahostore); onConnect republishes
		SetConnectRetry(true).
		SetConnectRetryInterval(250 * time.Millisecond).
		SetMaxReconnectInterval(500 * time.Millisecond).
		SetOrderMatters(false).
		SetCustomOpenConnectionFn(b.dial).
		SetOnConnectHandler(b.onConnect)
	if opt.username != "" {
		o.SetUsername(opt.username).SetPassword(opt.password)
	}
	b.client = mqtt.NewClient(o)
	b.client.Connect() // retries in the background (ConnectRetry)
	if b.interval > 0 {
		go b.tickLoop() // ends at kill or close
	} else {
		close(b.tickDone)
	}
	return b
}

func (b *board) topic(leaf string) string { return b.prefix + "/" + b.id + "/" + leaf }

// dial opens the TCP connection for paho and keeps it, so that kill can cut
// it without an MQTT DISCONNECT (the broker then publishes the Will).
func (b *board) dial(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
	b.mu.Lock()
	dead := b.dead
	b.mu.Unlock()
	if dead {
		return nil, errors.New("board killed")
	}
	c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dead {
		c.Close()
		return nil, errors.New("board killed")
	}
	b.conn = c
	return c, nil
}

// onConnect runs on its own goroutine after every (re)connect.
func (b *board) onConnect(c mqtt.Client) {
	tok := c.Subscribe(b.topic("led/set"), 1, b.onCommand)
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		return // the connection went; the next connect tries again
	}
	b.mu.Lock()
	infoJSON, _ := json.Marshal(b.info)
	led := b.led
	b.mu.Unlock()
	for _, m := range []struct{ leaf, payload string }{
		{"status", "online"},
		{"led", onOff(led)},
		{"info", string(infoJSON)},
	} {
		tok := c.Publish(b.topic(m.leaf), 1, true, m.payload)
		if !tok.WaitTimeout(wait) || tok.Error() != nil {
			return
		}
	}
	b.mu.Lock()
	b.connects++
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

// onCommand applies led/set and confirms with led, per the contract.
func (b *board) onCommand(c mqtt.Client, m mqtt.Message) {
	if m.Retained() || b.deaf {
		return // commands are never retained; ignore a stray copy
	}
	b.mu.Lock()
	switch strings.ToUpper(string(m.Payload())) {
	case "ON":
		b.led = true
	case "OFF":
		b.led = false
	case "TOGGLE":
		b.led = !b.led
	default:
		b.mu.Unlock()
		return
	}
	led := b.led
	b.mu.Unlock()
	c.Publish(b.topic("led"), 1, true, onOff(led)) // not waited for: this runs on paho's goroutine
	select {
	case b.commands <- string(m.Payload()):
	default:
	}
}

func onOff(on bool) string {
	if on {
		return "ON"
	}
	return "OFF"
}

func (b *board) tickLoop() {
	defer close(b.tickDone)
	tk := time.NewTicker(b.interval)
	defer tk.Stop()
	for {
		select {
		case <-tk.C:
			b.tick()
		case <-b.stopTick:
			return
		}
	}
}

// tick advances the count and publishes it (QoS 0, not retained); a board
// that is not connected counts on without publishing.
func (b *board) tick() int64 {
	b.mu.Lock()
	b.count++
	n := b.count
	b.mu.Unlock()
	if b.client.IsConnectionOpen() {
		b.client.Publish(b.topic("count"), 0, false, strconv.FormatInt(n, 10))
	}
	return n
}

// waitCommand waits for the next led/set the board applied.
func (b *board) waitCommand(t testing.TB) string {
	t.Helper()
	return testutil.Recv(t, b.commands, wait, "led/set at board "+b.id)
}

// ledOn reports the board's LED.
func (b *board) ledOn() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.led
}

// setLocal changes the LED as a button on the board would: published when
// connected, and in any case on the next connect.
func (b *board) setLocal(on bool) {
	b.mu.Lock()
	b.led = on
	b.mu.Unlock()
	if b.client.IsConnectionOpen() {
		b.client.Publish(b.topic("led"), 1, true, onOff(on))
	}
}

// report publishes an update report (retained, QoS 1), as a board does on
// every state of an update job (see CONTRACT "Firmware updates").
func (b *board) report(t testing.TB, payload string) {
	t.Helper()
	b.publish(t, "update", payload)
}

// setInfo changes fields of the board's info and publishes it (retained,
// QoS 1), as a board that restarted on a new build does.
func (b *board) setInfo(t testing.TB, fields map[string]any) {
	t.Helper()
	b.mu.Lock()
	for k, v := range fields {
		b.info[k] = v
	}
	infoJSON, _ := json.Marshal(b.info)
	b.mu.Unlock()
	b.publish(t, "info", string(infoJSON))
}

// publish publishes a retained QoS 1 message on the board's topic leaf and
// waits until the broker has it.
func (b *board) publish(t testing.TB, leaf, payload string) {
	t.Helper()
	tok := b.client.Publish(b.topic(leaf), 1, true, payload)
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("board %s: publish %s: %v", b.id, leaf, tok.Error())
	}
}

// waitConnects waits until the board has connected (and published its
// state) n times in all.
func (b *board) waitConnects(n int, d time.Duration) error {
	deadline := time.After(d)
	for {
		b.mu.Lock()
		got, changed := b.connects, b.changed
		b.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-deadline:
			return fmt.Errorf("connected %d times within %v, want %d", got, d, n)
		}
	}
}

// connectCount is how often the board has connected so far.
func (b *board) connectCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.connects
}

// kill cuts the board's TCP connection without an MQTT DISCONNECT, as a
// board losing power does: the broker publishes its Will (status offline).
// The board stays dead.
func (b *board) kill() {
	b.mu.Lock()
	if b.dead {
		b.mu.Unlock()
		return
	}
	b.dead = true
	c := b.conn
	b.mu.Unlock()
	close(b.stopTick)
	<-b.tickDone
	if c != nil {
		c.Close()
	}
}

// close shuts the board down cleanly (offline, then DISCONNECT) unless it
// was killed, and stops paho's goroutines either way.
func (b *board) close() {
	b.mu.Lock()
	dead := b.dead
	b.dead = true
	b.mu.Unlock()
	if !dead {
		close(b.stopTick)
		<-b.tickDone
		if b.client.IsConnectionOpen() {
			b.client.Publish(b.topic("status"), 1, true, "offline").WaitTimeout(time.Second)
		}
	}
	b.client.Disconnect(100)
}
